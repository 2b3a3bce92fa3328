"""Starting weights: read a state dict from a file, a selftrain model directory or a
torchvision weights name, and load it into a freshly built model.

Files are read with `torch.load(weights_only=True)` (never a pickled object). A
torchvision name (`ResNet18_Weights.IMAGENET1K_V1`) downloads its file, so it needs
internet on the user's machine. When the class count differs, the final classifier
keeps its fresh initialisation and the log names its tensors; any other mismatch is
one `ModelError` naming the source and the first keys, raised before anything is written.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from selftrain.architectures import classifier_prefixes
from selftrain.distributed import strip_ddp_prefix
from selftrain.errors import ModelError
from selftrain.models import HEADER_FILE, WEIGHTS_FILE, read_header
from selftrain.params_training import WEIGHTS_DIR, WEIGHTS_ENUM

# Keys named in an error message (the rest are counted).
SHOWN_KEYS = 5


def resolve_source(source: str, project_root: str | Path = ".") -> Path | str:
    """The weights file a params `weights` value names: a torchvision name stays as it is;
    a path (relative to the project, or absolute) must lie in the project's weights/
    folder, which dvc.yaml declares a dep of the training stages."""
    if WEIGHTS_ENUM.match(source):
        return source
    root = Path(project_root).resolve()
    path = (root / source).resolve()
    if not path.is_relative_to(root / WEIGHTS_DIR):
        raise ModelError(
            f"{source}: weights must be inside {root / WEIGHTS_DIR} (a dep of the training stages "
            "in dvc.yaml, so a new file reruns them); copy the file there"
        )
    if not path.exists():
        raise ModelError(f"{source}: no such weights file or model directory")
    if path.is_dir():
        if not (path / HEADER_FILE).exists():
            raise ModelError(f"{source}: a directory but not a selftrain model (no {HEADER_FILE})")
        read_header(path)  # a malformed header is named here, before its weights are read
        return path / WEIGHTS_FILE
    return path


def read_state_dict(source: str, project_root: str | Path = ".") -> dict[str, torch.Tensor]:
    """The tensors of a weights source, keys without a DDP `module.` prefix."""
    resolved = resolve_source(source, project_root)
    if isinstance(resolved, str):
        import torchvision  # the enum's download: only for a torchvision name

        state = torchvision.models.get_weight(resolved).get_state_dict(progress=False)
    else:
        try:
            state = torch.load(resolved, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
            raise ModelError(
                f"{resolved}: not a readable state dict (wrong or truncated file): {str(exc).splitlines()[0]}"
            ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{resolved}: expected a state dict (names to tensors), got {type(state).__name__}")
    return strip_ddp_prefix(state)


def name_list(keys: list[str], shown: int = SHOWN_KEYS) -> str:
    """The first `shown` keys, comma-separated, and how many more there are."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def load_weights(model: nn.Module, source: str, project_root: str | Path = ".") -> list[str]:
    """Load `source` into `model` in place; return the replaced classifier tensors' names.

    Every tensor must match by name and shape, except the final classifier's when the
    class count differs (it keeps its fresh initialisation).
    """
    state = read_state_dict(source, project_root)
    own = model.state_dict()
    head = classifier_prefixes(model)
    differ = [key for key, value in state.items() if key in own and own[key].shape != value.shape]
    replaced = [key for key in differ if key.startswith(head)]
    mismatched = [key for key in differ if not key.startswith(head)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    for problem, keys in (("shapes differ", mismatched), ("missing keys", missing), ("unexpected keys", unexpected)):
        if keys:
            raise ModelError(
                f"{source}: weights do not fit {type(model).__name__} ({problem}: {name_list(keys)}); "
                "is it the same architecture?"
            )
    model.load_state_dict({**state, **{key: own[key] for key in replaced}})
    return replaced


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy the tensors of `state` that match `model`'s by name and shape (a student's
    warm start from a teacher of another architecture); return (loaded, left fresh)."""
    own = model.state_dict()
    loaded = {key: value for key, value in state.items() if key in own and own[key].shape == value.shape}
    model.load_state_dict({**own, **loaded})
    return list(loaded), [key for key in own if key not in loaded]


__all__ = ["load_matching", "load_weights", "name_list", "read_state_dict", "resolve_source"]
