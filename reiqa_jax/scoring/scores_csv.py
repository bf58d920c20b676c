"""Subjective scores: a ``path,score[,group]`` CSV, and its rows joined to features.

The one reader of scores files: ``reiqa regress`` reads the user's, the
``iqa_csv`` dataset its ``scores.csv``. A header is optional (a first row
whose second cell is not a number is one); with a header the columns are
found by name: the image column by :func:`reiqa_jax.inputs.path_column` (the
rule of every image list), the score among ``score`` / ``mos`` / ``dmos`` /
``quality`` / ``label``, the group among ``group`` / ``content`` /
``reference`` / ``ref`` / ``ref_img``. Without a header: path, score, group.
Relative paths are taken relative to the CSV's folder.
"""
from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from reiqa_jax.errors import ReiqaError, one_line
from reiqa_jax.inputs import path_column, read_csv_table
from reiqa_jax.scoring.features import Features, is_numpy_file

SCORE_COLUMNS = ("score", "mos", "dmos", "quality", "label")
GROUP_COLUMNS = ("group", "content", "reference", "ref", "ref_img")


class ScoresCsvError(ReiqaError, ValueError):
    """A scores file that cannot be read; the message is one line."""


@dataclasses.dataclass
class ScoreRows:
    """A scores CSV: ``path`` cells as written, their resolved paths, scores, groups (or None)."""

    path: Path
    entries: list[str]
    resolved: list[str]
    scores: np.ndarray
    groups: list[str] | None


def read_scores_csv(path) -> ScoreRows:
    """Reads ``path,score[,group]`` (see the module docstring).

    Raises ScoresCsvError (one line) for an unreadable file, a numpy file
    given in its place, or a score that is not a finite number.
    """
    path = Path(path)
    if is_numpy_file(path):
        raise ScoresCsvError(f"{path} is a numpy file, not a scores CSV (path,score[,group])")
    try:
        rows = read_csv_table(path)
    except UnicodeDecodeError:
        raise ScoresCsvError(f"{path} is not a text file; give a scores CSV "
                             f"(path,score[,group])") from None
    except (OSError, csv.Error) as exc:
        raise ScoresCsvError(f"cannot read {path}: {one_line(exc)}") from None
    if not rows:
        raise ScoresCsvError(f"{path} is empty")
    columns = {"path": 0, "score": 1, "group": 2 if len(rows[0]) > 2 else None}
    first_line = 1
    if len(rows[0]) < 2 or _number(rows[0][1]) is None:
        first_line = 2
        header = [cell.lower() for cell in rows[0]]
        found = path_column(header)
        columns["path"] = 0 if found is None else found
        for key, names in (("score", SCORE_COLUMNS), ("group", GROUP_COLUMNS)):
            index = next((header.index(n) for n in names if n in header), None)
            if index is not None or key == "group":
                columns[key] = index
        rows = rows[1:]
    if not rows:
        raise ScoresCsvError(f"{path} has a header and no rows")
    if columns["score"] >= len(rows[0]):
        raise ScoresCsvError(f"{path} has no score column (path,score[,group])")
    entries, scores, groups = [], [], []
    for number, row in enumerate(rows, start=first_line):
        entry, cell = row[columns["path"]], row[columns["score"]]
        if not cell:
            raise ScoresCsvError(f"{path}: row {number} has no score: {','.join(row)}")
        value = _number(cell)
        if value is None:
            raise ScoresCsvError(f"{path}: row {number}: score {cell!r} is not a number")
        entries.append(entry)
        scores.append(value)
        if columns["group"] is not None:
            groups.append(row[columns["group"]])
    resolved = [_resolve(e, path.parent) for e in entries]
    return ScoreRows(path=path, entries=entries, resolved=resolved,
                     scores=np.asarray(scores, np.float64),
                     groups=groups if columns["group"] is not None else None)


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _resolve(entry: str, base: Path) -> str:
    candidate = Path(entry).expanduser()
    return str((candidate if candidate.is_absolute() else base / candidate).resolve())


@dataclasses.dataclass
class JoinedData:
    """Scores joined to features: ``index`` (M,) rows of the features file, with
    their scores, groups and names; the CSV rows left out, with reasons."""

    index: np.ndarray
    scores: np.ndarray
    groups: list[str] | None
    names: list[str]
    unmatched: list[str]
    failed: list[str]
    duplicates: list[str]

    def left_out(self, total: int) -> list[str]:
        """One line per reason rows were not used: count of ``total`` and a few names."""
        lines = []
        for label, names in (("have no features in the .npz", self.unmatched),
                             ("failed extraction", self.failed),
                             ("repeat an image already scored (first kept)", self.duplicates)):
            if names:
                more = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
                lines.append(f"{len(names)} of {total} score rows {label}: "
                             f"{', '.join(names[:5])}{more}")
        return lines


def join_scores(features: Features, rows: ScoreRows) -> JoinedData:
    """Matches each CSV row to a feature row: first its path cell against the
    npz ``entries`` as written, then its resolved path against the resolved npz
    paths. Rows that failed extraction, match nothing, or repeat an image
    already matched are listed, not used."""
    by_entry: dict[str, int] = {}
    for i, e in enumerate(features.entries):
        by_entry.setdefault(e, i)
    by_path: dict[str, int] = {}
    for i, p in enumerate(features.paths):
        by_path.setdefault(str(Path(p).expanduser().resolve()), i)
    failed_keys = set(features.failed_entries) | {
        str(Path(p).expanduser().resolve()) for p in features.failed}
    index, scores, groups, names = [], [], [], []
    unmatched, failed, duplicates = [], [], []
    used: set[int] = set()
    for k, (entry, resolved) in enumerate(zip(rows.entries, rows.resolved)):
        row = by_entry.get(entry, by_path.get(resolved))
        if row is None:
            (failed if entry in failed_keys or resolved in failed_keys else unmatched).append(entry)
            continue
        if row in used:
            duplicates.append(entry)
            continue
        used.add(row)
        index.append(row)
        scores.append(rows.scores[k])
        names.append(entry)
        if rows.groups is not None:
            groups.append(rows.groups[k])
    return JoinedData(index=np.asarray(index, dtype=np.int64),
                      scores=np.asarray(scores, np.float64),
                      groups=groups if rows.groups is not None else None, names=names,
                      unmatched=unmatched, failed=failed, duplicates=duplicates)
