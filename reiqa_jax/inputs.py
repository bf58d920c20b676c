"""Turning command-line inputs into an ordered list of image paths.

An input is one of:

* an image file: used as given, whatever its extension (a file named on the
  command line that turns out not to be an image is reported, not skipped);
* a directory: searched recursively for files with an image extension, in
  sorted order; other files are counted and skipped;
* a ``.csv`` list: the column named ``image_path`` / ``path`` / ``image`` /
  ``image_name`` / ``filename`` (any case; the official training CSV uses
  ``Image_path``), else the first column;
* a ``.txt`` / ``.lst`` list: one path per line, ``#`` starts a comment.

Relative paths inside a list are taken relative to the list's own folder, so
a dataset folder with its label file can be moved as a whole.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif",
    ".ppm", ".pgm", ".pnm", ".jfif",
})
LIST_EXTENSIONS = frozenset({".csv", ".txt", ".lst"})
_PATH_COLUMNS = ("image_path", "path", "image", "image_name", "filename", "file")


class InputError(ValueError):
    """An input argument that names nothing usable; the message is one line."""


@dataclasses.dataclass
class ExpandedInputs:
    """paths: images in input order. skipped: files in directories without an image extension."""

    paths: list[str]
    skipped: list[str]


def _read_csv_list(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    for name in _PATH_COLUMNS:
        if name in header:
            column = header.index(name)
            return [row[column].strip() for row in rows[1:] if len(row) > column]
    # No recognised header: the first column holds paths; a first row that is a
    # header names no existing file and would only add a bogus failure.
    first = rows[0][0].strip()
    body = rows if (path.parent / first).exists() or Path(first).exists() else rows[1:]
    return [row[0].strip() for row in body if row]


def _read_text_list(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _resolve(entry: str, base: Path) -> str:
    candidate = Path(entry).expanduser()
    return str(candidate if candidate.is_absolute() else base / candidate)


def expand_inputs(inputs: list[str]) -> ExpandedInputs:
    """Expands files, directories and list files into image paths, in order."""
    paths: list[str] = []
    skipped: list[str] = []
    for raw in inputs:
        item = Path(raw).expanduser()
        if item.is_dir():
            for file in sorted(p for p in item.rglob("*") if p.is_file()):
                (paths if file.suffix.lower() in IMAGE_EXTENSIONS else skipped).append(str(file))
        elif item.suffix.lower() in LIST_EXTENSIONS and item.is_file():
            reader = _read_csv_list if item.suffix.lower() == ".csv" else _read_text_list
            try:
                entries = reader(item)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise InputError(f"cannot read list {raw}: {exc}") from None
            paths.extend(_resolve(entry, item.parent) for entry in entries)
        elif item.exists():
            paths.append(str(item))
        else:
            raise InputError(f"input does not exist: {raw}")
    return ExpandedInputs(paths=paths, skipped=skipped)
