"""Data-parallel training across processes: PyTorch DDP under torchrun.

With ``distributed.processes`` N > 1, a train stage relaunches itself as
``python -m torch.distributed.run --standalone --nproc-per-node N -m stages.<stage> ...``
(one machine); on many machines, start the stage under `torchrun` yourself with
the rendezvous flags and the world size equal to N. Every rank reads its own
shard of the DALI pipeline, gradients are averaged by DDP (gloo on CPU, NCCL on
GPU), and only rank 0 writes artifacts. The checkpoint is the plain module's
state dict, so the single-process code loads it.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

from selftrain.config import DistributedConfig
from selftrain.errors import ConfigError

# Set by torchrun in every process it starts.
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
_DDP_PREFIX = "module."


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    # Index on this machine: the GPU a rank uses.
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the artifacts, checkpoints and logs."""
        return self.rank == 0


SINGLE_PROCESS = World()


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in _TORCHRUN_ENV)


def needs_relaunch(config: DistributedConfig) -> bool:
    """True when params ask for several processes and this is not one of them yet."""
    return config.processes > 1 and not launched_by_torchrun()


def torchrun_command(module: str, argv: Sequence[str], processes: int) -> list[str]:
    """Run `python -m module argv` as `processes` ranks on this machine."""
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", f"--nproc-per-node={processes}",
        "-m", module, *argv,
    ]  # fmt: skip


def relaunch(module: str, argv: Sequence[str], processes: int) -> int:
    """Run the stage under torchrun and wait; return its exit code (non-zero if any rank failed)."""
    return subprocess.run(torchrun_command(module, argv, processes)).returncode


def resolve_backend(setting: str, device: str) -> str:
    """``distributed.backend`` for a DALI device ("cpu"/"gpu"): auto is NCCL on GPU, else gloo."""
    if setting == "auto":
        return "nccl" if device == "gpu" else "gloo"
    if setting == "nccl" and device != "gpu":
        raise ConfigError("distributed.backend: nccl needs GPUs; use gloo or auto on CPU")
    return setting


def apply_thread_count(config: DistributedConfig) -> int:
    """Set torch's intra-op threads from ``distributed.threads_per_process`` (0: leave them).

    Returns the thread count in effect.
    """
    if config.threads_per_process:
        torch.set_num_threads(config.threads_per_process)
    return torch.get_num_threads()


@contextlib.contextmanager
def process_group(config: DistributedConfig, device: str) -> Iterator[World]:
    """This process's World; under torchrun with N > 1, inside an initialised process group.

    Raises:
        ConfigError: torchrun started a world of another size than ``distributed.processes``
            (the params DVC records must say how the model was trained).
    """
    if not launched_by_torchrun():
        if config.processes > 1:
            raise ConfigError(
                f"distributed.processes is {config.processes}: start the stage under torchrun "
                "(the stage command relaunches itself when run directly)"
            )
        yield SINGLE_PROCESS
        return
    world = World(
        rank=int(os.environ["RANK"]),
        size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ["LOCAL_RANK"]),
    )
    if world.size != config.processes:
        raise ConfigError(
            f"distributed.processes is {config.processes}, but torchrun started {world.size} "
            "processes; make them agree"
        )
    if world.size == 1:
        yield world
        return
    if device == "gpu":
        # DALI and `torch.device("cuda")` both use the current device.
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend=resolve_backend(config.backend, device))
    try:
        yield world
    finally:
        dist.destroy_process_group()


def rank_batch_size(batch_size: int, world: World) -> int:
    """Per-rank batch, so that the global batch (and so the lr schedule) stays about `batch_size`."""
    return max(1, math.ceil(batch_size / world.size))


def min_over_ranks(value: int, world: World) -> int:
    """The smallest `value` of all ranks (e.g. steps per epoch: uneven shards differ by one)."""
    if world.size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def sum_over_ranks(values: Sequence[float], world: World) -> list[float]:
    if world.size == 1:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_ranks_true(flag: bool, world: World) -> bool:
    """Whether `flag` holds on every rank; lets all ranks stop together instead of
    one raising while the others wait for it in the next all-reduce."""
    return min_over_ranks(int(flag), world) == 1


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every rank's `obj`, in rank order (on every rank)."""
    if world.size == 1:
        return [obj]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, obj)
    return gathered


def data_parallel(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """`model` wrapped in DDP when there are several ranks, else `model` itself.

    DDP broadcasts rank 0's weights at construction, so every rank starts equal.
    Save `model` (not the wrapper): its state dict has no ``module.`` prefix.
    """
    if world.size == 1:
        return model
    device_ids = [device.index if device.index is not None else world.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def strip_ddp_prefix(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict saved from a DDP wrapper, with the ``module.`` prefix of its keys removed."""
    if state and all(key.startswith(_DDP_PREFIX) for key in state):
        return {key[len(_DDP_PREFIX):]: value for key, value in state.items()}
    return dict(state)


def _collective_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo reduces CPU tensors.
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


__all__ = [
    "SINGLE_PROCESS",
    "World",
    "all_ranks_true",
    "apply_thread_count",
    "data_parallel",
    "gather_objects",
    "launched_by_torchrun",
    "min_over_ranks",
    "needs_relaunch",
    "process_group",
    "rank_batch_size",
    "relaunch",
    "resolve_backend",
    "strip_ddp_prefix",
    "sum_over_ranks",
    "torchrun_command",
]
