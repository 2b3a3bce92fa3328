"""train_student: a noised student on labeled rows plus the round's refined pseudo-labels."""

import pandas as pd

from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.trainers import train_student
from stages.common import parser, run
from stages.training import add_training_flags, checkpoint_path, student_images_per_epoch, train_and_save


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--gen", type=int, required=True, help="generation k of the student")
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--refined", required=True, help="this round's refined table")
    p.add_argument(
        "--teacher", default=None, help="the teacher's model directory (read when student.init is 'teacher')"
    )
    p.add_argument("--out", required=True, help="model directory to write")
    add_training_flags(p)
    args = p.parse_args(argv)
    checkpoint = checkpoint_path(args.checkpoint, args.gen)
    params = load_params(args.params)

    epochs = params.student_epochs(args.gen)

    def train(world, progress):
        dataset = load_dataset(args.manifest)
        refined = pd.read_parquet(args.refined)
        pseudo_rows = int(refined.loc[refined["kept"], "copies"].sum())
        progress.start(student_images_per_epoch(pseudo_rows, params.student.batch_size, params.student.batch_ratio))
        return train_student(
            dataset, refined, params, args.gen, on_epoch=progress, checkpoint=checkpoint, world=world,
            teacher_dir=args.teacher,
        )  # fmt: skip

    train_and_save(
        "stages.train_student", argv, params, train, epochs=epochs,
        out=args.out, live_dir=args.live_dir, checkpoint=checkpoint, label=f"train_student@{args.gen}",
    )  # fmt: skip


if __name__ == "__main__":
    run(main)
