"""train_teacher: generation 0, learned from the labeled rows only."""

from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.trainers import train_teacher
from stages.common import parser, run
from stages.training import add_training_flags, checkpoint_path, train_and_save


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--out", default="models/gen0", help="model directory to write")
    add_training_flags(p)
    args = p.parse_args(argv)
    checkpoint = checkpoint_path(args.checkpoint, 0)
    params = load_params(args.params)

    def train(world, progress):
        dataset = load_dataset(args.manifest)
        progress.start(images_per_epoch=len(dataset.labeled()))
        return train_teacher(dataset, params, on_epoch=progress, checkpoint=checkpoint, world=world)

    train_and_save(
        "stages.train_teacher", argv, params, train, epochs=params.teacher_epochs(),
        out=args.out, live_dir=args.live_dir, checkpoint=checkpoint, label="train_teacher",
    )  # fmt: skip


if __name__ == "__main__":
    run(main)
