"""The training image list.

``config.data`` is either a CSV with an ``Image_path`` column (the official
``csv_files/moco_train.csv`` format; ``image_path``, ``path``... are accepted
too, see ``reiqa_jax.inputs``) whose relative paths are resolved against the
CSV's own folder, or a folder searched recursively for image files (sorted).
Every listed file must exist (checked up front, before any compute).
"""
from __future__ import annotations

import hashlib
import os
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
        expanded = expand_inputs([str(source)])
    except InputError as exc:
        raise DataError(str(exc)) from None
    paths = expanded.paths
    if not paths:
        raise DataError(f"no images in {data}")
    missing = [entry for path, entry in zip(paths, expanded.entries) if not os.path.exists(path)]
    if missing:
        where = f"relative paths are taken from {source.parent}; " if source.is_file() else ""
        raise DataError(f"{len(missing)} of the {len(paths)} training images in {data} do not "
                        f"exist ({where}first: {', '.join(missing[:3])})")
    return paths


def fingerprint(paths: list[str], root: str | Path) -> str:
    """sha256 of the image list as paths relative to ``root`` (the data folder,
    or the list's folder), so a dataset moved as a whole keeps its fingerprint
    and any added, removed or reordered image changes it."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.path.relpath(path, root).encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()
