"""The features ``.npz`` that ``reiqa extract`` writes, and reading it back.

Keys (every string array is numpy unicode, no pickle):

=====================  ========================================================
``paths``              (N,) resolved paths of the images used, input order
``entries``            (N,) each input as the user wrote it: a list's path cell
                       (relative as written), a file argument as given, or a
                       folder argument joined with the path found in it
``column_<NAME>``      (N,) the other columns of input CSV lists, as text; ''
                       for images that came from elsewhere
``quality``            (N, 4096) float32 quality-aware features (if computed)
``content``            (N, 4096) float32 content-aware features (if computed)
``failed``             (M,) resolved paths of the inputs that could not be used
``failed_entries``     (M,) the same, as written
``errors``             (M,) one-line reason for each
``quality_ckpt``       () absolute path of the quality encoder's checkpoint
``content_ckpt``       () the same for the content encoder ('' when not used)
=====================  ========================================================

The Re-IQA feature of image *i* is ``concat(content[i], quality[i])``.
:func:`load_features` also reads files written before ``entries`` and the
columns existed (it fills them from ``paths``). Files are written through a
temporary sibling and renamed, with fixed zip timestamps, so the same
features give the same bytes.
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path

import numpy as np

ENCODERS = ("quality", "content")
COLUMN_PREFIX = "column_"


def npz_path(path) -> Path:
    """``path`` with ``.npz`` appended unless it already ends so (numpy's own rule)."""
    path = Path(path)
    return path if path.name.endswith(".npz") else path.with_name(path.name + ".npz")


@dataclasses.dataclass
class Features:
    """Extraction results, in input order.

    paths: the N images that were used. quality / content: (N, D) float32,
    or None when that encoder was not given. failed / errors: inputs that
    could not be used, with a one-line reason each. entries / failed_entries:
    the same inputs as the user wrote them (default: the paths). columns:
    {name: N strings} carried over from CSV lists. quality_ckpt /
    content_ckpt: the checkpoint directories used ('' when unknown).
    """

    paths: list[str]
    quality: np.ndarray | None
    content: np.ndarray | None
    failed: list[str]
    errors: list[str]
    entries: list[str] | None = None
    failed_entries: list[str] | None = None
    columns: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    quality_ckpt: str = ""
    content_ckpt: str = ""

    def __post_init__(self):
        if self.entries is None:
            self.entries = list(self.paths)
        if self.failed_entries is None:
            self.failed_entries = list(self.failed)

    def reiqa(self) -> np.ndarray:
        """The 8192-d Re-IQA feature: content ⊕ quality (both encoders needed)."""
        if self.quality is None or self.content is None:
            raise ValueError("the Re-IQA feature needs both the content and the quality encoder")
        return np.concatenate([self.content, self.quality], axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz keys and arrays (see the module docstring)."""
        arrays = {
            "paths": _strings(self.paths),
            "entries": _strings(self.entries),
        }
        for name, values in self.columns.items():
            arrays[COLUMN_PREFIX + name] = _strings(values)
        for name in ENCODERS:
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value, np.float32)
        arrays.update(failed=_strings(self.failed), failed_entries=_strings(self.failed_entries),
                      errors=_strings(self.errors),
                      quality_ckpt=np.asarray(str(self.quality_ckpt or "")),
                      content_ckpt=np.asarray(str(self.content_ckpt or "")))
        return arrays

    def save_npz(self, path) -> Path:
        """Writes the .npz (``.npz`` is appended when missing); returns the path written."""
        path = npz_path(path)
        write_npz(path, self.arrays())
        return path


def _strings(values) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=str).reshape(-1)


def write_npz(path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz of ``arrays``, written to a temporary sibling then renamed.

    Zip entries carry a fixed timestamp, so equal arrays give equal bytes.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for key, value in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.asanyarray(value), allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_features(path) -> Features:
    """Reads a features .npz written by ``reiqa extract`` or :meth:`Features.save_npz`.

    Files from before ``entries``, ``failed_entries``, the CSV columns and the
    checkpoint names existed load too: entries default to the paths, the
    rest to empty.
    """
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        paths = [str(p) for p in data["paths"]]
        failed = [str(p) for p in data["failed"]] if "failed" in keys else []

        def strings(key, default):
            return [str(v) for v in data[key]] if key in keys else list(default)

        return Features(
            paths=paths,
            quality=np.asarray(data["quality"]) if "quality" in keys else None,
            content=np.asarray(data["content"]) if "content" in keys else None,
            failed=failed,
            errors=strings("errors", [""] * len(failed)),
            entries=strings("entries", paths),
            failed_entries=strings("failed_entries", failed),
            columns={key[len(COLUMN_PREFIX):]: [str(v) for v in data[key]]
                     for key in data.files if key.startswith(COLUMN_PREFIX)},
            quality_ckpt=str(data["quality_ckpt"]) if "quality_ckpt" in keys else "",
            content_ckpt=str(data["content_ckpt"]) if "content_ckpt" in keys else "",
        )
