"""Turning command-line inputs into an ordered list of image paths.

An input is one of:

* an image file: used as given, whatever its extension (a file named on the
  command line that turns out not to be an image is reported, not skipped);
* a directory: searched recursively (symbolic links to folders are
  followed, each folder once) for names with an image extension, in sorted
  order; other files are counted and skipped. A name with an image
  extension that is a broken symbolic link, a FIFO or another special file
  is kept, so that the loader reports it instead of it vanishing;
* a ``.csv`` list: the column named ``image_path`` / ``path`` / ``image`` /
  ``image_name`` / ``filename`` / ``file`` / ``name`` (any case; the official
  training CSV uses ``Image_path``), else the first column
  (:func:`path_column`, the rule every CSV of image paths follows: scores
  CSVs too). The other columns are carried through as text (e.g. a MOS
  column). A CSV whose first row names an existing file has no header: its
  columns are named by position, from "1";
* a ``.txt`` / ``.lst`` list: one path per line, ``#`` starts a comment.

Relative paths inside a list are taken relative to the list's own folder, so
a dataset folder with its label file can be moved as a whole. Every input
keeps two names: its resolved absolute path (``paths``) and the entry as the
user wrote it (``entries``): the list cell, the file argument, or the folder
argument joined with the path found inside it.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import sys
from pathlib import Path

from reiqa_jax.errors import ReiqaError, one_line

IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif",
    ".ppm", ".pgm", ".pnm", ".jfif",
})
LIST_EXTENSIONS = frozenset({".csv", ".txt", ".lst"})
# Header names of the column that holds image paths, in order of preference.
PATH_COLUMNS = ("image_path", "path", "image", "image_name", "filename", "file", "name")


class InputError(ReiqaError, ValueError):
    """An input argument that names nothing usable; the message is one line."""


@dataclasses.dataclass
class ExpandedInputs:
    """The images named by the inputs, in order.

    paths: absolute paths. entries: the same images as written (see the
    module docstring). columns: {name: one string per path} from CSV lists,
    '' where an image has no such column. skipped: files in folders without
    an image extension.
    """

    paths: list[str]
    skipped: list[str]
    entries: list[str] = dataclasses.field(default_factory=list)
    columns: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.entries:
            self.entries = list(self.paths)


@dataclasses.dataclass
class _ListRows:
    entries: list[str]
    columns: dict[str, list[str]]


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def read_csv_table(path) -> list[list[str]]:
    """The rows of a CSV file: cells stripped, blank rows dropped, every row padded
    with '' to the widest one (a UTF-8 byte-order mark is ignored). Raises
    OSError, UnicodeDecodeError or csv.Error."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [[cell.strip() for cell in row] for row in csv.reader(handle)]
    rows = [row for row in rows if any(row)]
    width = max((len(row) for row in rows), default=0)
    return [row + [""] * (width - len(row)) for row in rows]


def path_column(header) -> int | None:
    """Which column of a header row holds image paths: the first of
    :data:`PATH_COLUMNS` found (any case), or None."""
    lowered = [str(cell).strip().lower() for cell in header]
    return next((lowered.index(name) for name in PATH_COLUMNS if name in lowered), None)


def _read_csv_list(path: Path) -> _ListRows:
    rows = read_csv_table(path)
    if not rows:
        return _ListRows([], {})
    width = len(rows[0])
    column = path_column(rows[0])
    if column is not None:
        names = [cell or str(i + 1) for i, cell in enumerate(rows[0])]
        body = rows[1:]
    else:
        # No recognised header: the first column holds paths; a first row that is a
        # header names no existing file and would only add a bogus failure.
        column = 0
        first = rows[0][0]
        has_header = not ((path.parent / Path(first).expanduser()).exists()
                          or Path(first).expanduser().exists())
        names = ([cell or str(i + 1) for i, cell in enumerate(rows[0])] if has_header
                 else [str(i + 1) for i in range(width)])
        body = rows[1:] if has_header else rows
    body = [row for row in body if row[column]]
    names = _unique_names(names)
    columns = {names[i]: [row[i] for row in body] for i in range(width) if i != column}
    return _ListRows([row[column] for row in body], columns)


def _read_text_list(path: Path) -> _ListRows:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    entries = [line.split("#", 1)[0].strip() for line in lines]
    return _ListRows([e for e in entries if e], {})


def _walk(top: Path):
    """Relative paths of every non-folder entry under ``top``, following folder links once."""
    seen = set()
    for root, dirs, files in os.walk(top, followlinks=True):
        try:
            stat = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (stat.st_dev, stat.st_ino) in seen:  # a link back into the tree
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        rel_root = Path(root).relative_to(top)
        for name in files:  # broken links and special files land here too
            yield rel_root / name


def expand_inputs(inputs: list[str]) -> ExpandedInputs:
    """Expands files, directories and list files into image paths, in order."""
    paths: list[str] = []
    entries: list[str] = []
    skipped: list[str] = []
    columns: dict[str, list[str]] = {}

    def add(path: str, entry: str, row: dict[str, str] | None = None) -> None:
        for name, value in (row or {}).items():
            columns.setdefault(name, [""] * len(paths)).append(value)
        paths.append(os.path.abspath(path))
        entries.append(entry)
        for values in columns.values():
            if len(values) < len(paths):
                values.append("")

    for raw in inputs:
        item = Path(raw).expanduser()
        if item.is_dir():
            for rel in sorted(_walk(item), key=lambda p: p.parts):
                found = os.path.join(raw, str(rel))
                if rel.suffix.lower() in IMAGE_EXTENSIONS:
                    add(str(item / rel), found)
                else:
                    skipped.append(found)
        elif item.suffix.lower() in LIST_EXTENSIONS and item.is_file():
            reader = _read_csv_list if item.suffix.lower() == ".csv" else _read_text_list
            try:
                rows = reader(item)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise InputError(f"cannot read list {raw}: {one_line(exc)}") from None
            for i, entry in enumerate(rows.entries):
                add(str(item.parent / Path(entry).expanduser()), entry,
                    {name: values[i] for name, values in rows.columns.items()})
        elif item.exists() or item.is_symlink():
            add(str(item), raw)
        else:
            raise InputError(f"input does not exist: {raw}")
    return ExpandedInputs(paths=paths, skipped=skipped, entries=entries, columns=columns)


def expand_image_inputs(inputs: list[str], prog: str) -> ExpandedInputs:
    """``expand_inputs`` for a command: says on stderr how many files of the
    input folders were skipped (``PROG: skipped N file(s) ...``) and raises
    :class:`InputError` when no image is left."""
    expanded = expand_inputs(inputs)
    if expanded.skipped:
        print(f"{prog}: skipped {len(expanded.skipped)} file(s) without an image "
              f"extension in the input folders", file=sys.stderr)
    if not expanded.paths:
        raise InputError("no images found in the inputs")
    return expanded
