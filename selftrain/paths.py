"""The one place that builds artifact paths, relative to a project root.

`dvc.yaml` spells the same layout with `${key}` interpolation; a test keeps the
two in agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


# One part of a sharded table per shard. Zero-padded, so that the names sort in shard
# order: pyarrow reads a directory's files sorted by name.
PART_FILE = "part-{shard_id:05d}.parquet"


def pseudo_label_part(table_dir: Path, shard_id: int) -> Path:
    """The file shard `shard_id` writes inside a sharded table's directory."""
    return Path(table_dir) / PART_FILE.format(shard_id=shard_id)


@dataclass(frozen=True)
class ProjectPaths:
    root: Path = Path(".")

    @property
    def prepared_dir(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def manifest(self) -> Path:
        return self.prepared_dir / "manifest.parquet"

    @property
    def truth(self) -> Path:
        """Ground truth of unlabeled rows, where known: read by reports only (`selftrain.truth`)."""
        return self.prepared_dir / "truth.parquet"

    @property
    def images_dir(self) -> Path:
        return self.prepared_dir / "images"

    @property
    def corrections(self) -> Path:
        """People's label corrections (`selftrain.refine.corrections`): a DVC dep of every refine."""
        return self.root / "data" / "corrections.csv"

    def review_dir(self, gen: int) -> Path:
        """Round k's review queue (queue.csv, queue.html): `selftrain review --gen k` writes it."""
        return self.root / "reviews" / f"gen{gen}"

    def round_dir(self, gen: int) -> Path:
        return self.root / "data" / f"gen{gen}"

    def pseudo_labels(self, gen: int) -> Path:
        """The round's table: a directory of parts, one per inference shard
        (`pd.read_parquet` of the directory reads them all, in pool order)."""
        return self.round_dir(gen) / "pseudo_labels"

    def pseudo_label_part(self, gen: int, shard_id: int) -> Path:
        return pseudo_label_part(self.pseudo_labels(gen), shard_id)

    def val_predictions(self, gen: int) -> Path:
        """The teacher's predictions over the val split (with its truth), beside the pool's
        table rather than in it: refine measures each rule's precision on them."""
        return self.round_dir(gen) / "val_predictions.parquet"

    def refined(self, gen: int) -> Path:
        return self.round_dir(gen) / "refined.parquet"

    def rules_report(self, gen: int) -> Path:
        return self.round_dir(gen) / "rules_report.json"

    def model_dir(self, gen: int) -> Path:
        return self.root / "models" / f"gen{gen}"

    @property
    def best_pointer(self) -> Path:
        """`models/best.json`: which generation's model is the best so far (by val accuracy)."""
        return self.root / "models" / "best.json"

    def checkpoint(self, gen: int) -> Path:
        """Per-epoch training state; outside DVC outputs, which DVC clears before a run."""
        return self.root / "checkpoints" / f"gen{gen}.pt"

    def live_dir(self, gen: int) -> Path:
        """DVCLive's per-epoch training curves of a generation."""
        return self.root / "dvclive" / f"gen{gen}"

    def metrics(self, gen: int) -> Path:
        return self.root / "metrics" / f"gen{gen}.json"

    @property
    def summary_metrics(self) -> Path:
        """The run's few headline numbers (best generation, accuracies) for `dvc exp show`."""
        return self.root / "metrics" / "summary.json"

    @property
    def reports_dir(self) -> Path:
        """The HTML report; `write_report` replaces this whole directory."""
        return self.root / "reports"

    @property
    def loop_plots_dir(self) -> Path:
        """Plot data across generations (accuracy curve, confidence histograms)."""
        return self.plots_dir / "loop"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    def confusion_plot(self, gen: int) -> Path:
        return self.plots_dir / f"gen{gen}" / "confusion.csv"

    def per_class_plot(self, gen: int) -> Path:
        """Per-class AP, F1 and support on test (both tasks)."""
        return self.plots_dir / f"gen{gen}" / "per_class.csv"
