"""The training image list.

``config.data`` is either a CSV with an ``Image_path`` column (the official
``csv_files/moco_train.csv`` format; ``image_path``, ``path``... are accepted
too, see ``reiqa_jax.inputs``) whose relative paths are resolved against the
CSV's own folder, or a folder searched recursively for image files (sorted).
"""
from __future__ import annotations

from pathlib import Path

from reiqa_jax.errors import ReiqaError


class DataError(ReiqaError, ValueError):
    """The training data cannot be used; the message is one line."""


def training_images(data: str) -> list[str]:
    """Paths of the training images named by ``data`` (CSV or folder), in order."""
    from reiqa_jax.inputs import InputError, expand_inputs

    if not data:
        raise DataError("no training data: set --config.data to a CSV (column Image_path) "
                        "or an image folder")
    source = Path(data).expanduser()
    if not source.exists():
        raise DataError(f"training data {data} does not exist")
    if not (source.is_dir() or source.suffix.lower() in (".csv", ".txt", ".lst")):
        raise DataError(f"training data {data} is neither a folder nor a .csv/.txt list")
    try:
        paths = expand_inputs([str(source)]).paths
    except InputError as exc:
        raise DataError(str(exc)) from None
    if not paths:
        raise DataError(f"no images in {data}")
    return paths
