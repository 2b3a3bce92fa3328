"""Where the prepare stage's images come from: `data.source` in params.yaml.

- ``digits``: scikit-learn's handwritten digits, written out as PNGs (`prepare_digits`).
- ``digits-mosaic``: 2x2 mosaics of the digits with their label sets, the embedded
  default of ``task: multilabel`` (`mosaic.prepare_mosaics`).
- ``folders``: ``<raw_dir>/labeled/<class>/**`` and ``<raw_dir>/unlabeled/**``, plus
  optional ``<raw_dir>/val/<class>/**`` and ``<raw_dir>/test/<class>/**``.
- ``manifest``: a CSV or Parquet file with ``path`` and ``label`` (empty: unlabeled),
  optional ``split`` and ``item_id``, and any metadata columns, which are carried into
  the prepared manifest and from there into every round's tables (for rules). With
  ``task: multilabel`` a ``labels`` column of label sets ("a|b") takes ``label``'s place.

Folders and manifests reference images in place: the prepared manifest's ``path`` is
relative to its own directory (``../raw/labeled/cat/1.png``), computed without
resolving symlinks, so artifacts hash the same in any clone and under any DVC cache
link type. Labeled rows with no val/test split of their own are split into val and
test by ``data.val_fraction``/``data.test_fraction``, per class; everything else that
has a label stays labeled (``data.labeled_fraction`` only applies to digits).

Every referenced image is decoded once here. A bad image in the labeled, val or test
set is an error; a bad one in the unlabeled pool is skipped and listed in
``skipped.json``, so one broken file in a million does not stop a nightly run.
``source.json`` records a digest of every referenced file's bytes: the images stay
under ``raw_dir``, so without it an image edited in place would leave ``data/prepared``
unchanged and DVC would not rerun the stages after prepare.

Modules: `prepare` (writes the prepared directory), `folders` and `manifest` (the two
readers), `prepared_manifest` (what both do with the rows they found), `images`
(decoding checks), `splits` (val/test allocation), `label_set_rows` (the multilabel
rows' sets: checks, split strata, prepared columns), `locations` (paths and the data
root), `mosaic` (the digits-mosaic source).
"""

from selftrain.sources.folders import read_folders
from selftrain.sources.images import check_image, check_images
from selftrain.sources.manifest import read_manifest
from selftrain.sources.prepare import SKIPPED_FILE, Prepared, prepare_source, small_val_warning
from selftrain.sources.prepared_manifest import SourceResult

__all__ = [
    "SKIPPED_FILE",
    "Prepared",
    "SourceResult",
    "check_image",
    "check_images",
    "prepare_source",
    "read_folders",
    "read_manifest",
    "small_val_warning",
]
