"""Streamed, resumable output of ``reiqa extract``: append-only shards beside the final .npz.

For a final output ``OUT.npz`` the finished features go, while the run
goes on, into the folder ``OUT.npz.partial/``::

    run.json            {"format": "reiqa-extract-partial", "version": 1,
                         "settings": {...what the features depend on...}}
    lock                locked (flock) by the run that writes here
    shard-000001.npz    paths (k,) str, size (k,) int64, mtime_ns (k,) int64,
    shard-000002.npz    and quality / content (k, D) float32
    ...

A shard is written under a temporary name and renamed, so it is complete
or absent: a run that dies loses only the rows it had not saved yet. A run
with the same ``settings`` (checkpoints and their contents, compute dtype,
EXIF handling) reuses every row whose image file still has the recorded
size and modification time and computes the rest; different settings are
refused rather than mixed. Failed inputs are not recorded: a later run
tries them again. When every input is done, the caller assembles the final
.npz in input order from the shards and removes the folder.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from reiqa_jax.errors import ReiqaError, one_line
from reiqa_jax.feature_file import write_npz

FORMAT = "reiqa-extract-partial"
VERSION = 1
SUFFIX = ".partial"
RUN_JSON = "run.json"
LOCK = "lock"
_SHARD = "shard-{:06d}.npz"


class PartialOutputError(ReiqaError, ValueError):
    """The partial output cannot be used or written; the message is one line."""


def partial_dir(final) -> Path:
    """The folder of shards beside the final output."""
    final = Path(final)
    return final.with_name(final.name + SUFFIX)


def checkpoint_fingerprint(directory) -> str:
    """A digest of a checkpoint folder: its reiqa.json, and every file's name, size and mtime."""
    digest = hashlib.sha256()
    directory = Path(directory)
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        info = path.stat()
        digest.update(f"{path.relative_to(directory)}\0{info.st_size}\0{info.st_mtime_ns}\n"
                      .encode())
        if path.name == "reiqa.json" and path.parent == directory:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _file_stamp(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of a file, (-1, -1) when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return -1, -1
    return info.st_size, info.st_mtime_ns


class PartialOutput:
    """The shard folder of one final output, opened for this run (see the module docstring).

    final: the final .npz path. settings: JSON-able description of what
    the features depend on. resume: reuse the rows of an earlier run (else
    they are discarded). Raises PartialOutputError (one line) when the
    folder cannot be written, another run holds it, or its settings differ.
    """

    def __init__(self, final, settings: Mapping, *, resume: bool = True):
        self.final = Path(final)
        self.directory = partial_dir(self.final)
        self.settings = json.loads(json.dumps(dict(settings)))
        # path -> (shard file name, row, size, mtime_ns); later shards win.
        self._records: dict[str, tuple[str, int, int, int]] = {}
        self._next = 1
        self._lock = None
        try:
            self._open(resume)
        except OSError as exc:
            self.close()
            raise PartialOutputError(f"cannot write {self.directory}: {one_line(exc)}") from None
        except PartialOutputError:
            self.close()
            raise

    def _open(self, resume: bool) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        if self.directory.exists() and not self.directory.is_dir():
            raise PartialOutputError(f"{self.directory} exists and is not a folder")
        self.directory.mkdir(exist_ok=True)
        self._lock = open(self.directory / LOCK, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PartialOutputError(f"another reiqa extract is writing to {self.directory}; "
                                     f"wait for it or stop it first") from None
        for leftover in self.directory.glob("*.tmp-*"):  # from a run that was killed
            leftover.unlink()
        run_json = self.directory / RUN_JSON
        shards = sorted(self.directory.glob("shard-*.npz"))
        if resume and run_json.exists():
            self._check_settings(run_json)
            for shard in shards:
                self._index(shard)
        else:
            for shard in shards:
                shard.unlink()
        header = {"format": FORMAT, "version": VERSION, "settings": self.settings}
        tmp = run_json.with_name(f"{RUN_JSON}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(header, indent=1, sort_keys=True))
        os.replace(tmp, run_json)

    def _check_settings(self, run_json: Path) -> None:
        try:
            header = json.loads(run_json.read_text())
            if header.get("format") != FORMAT or header.get("version") != VERSION:
                raise ValueError("not a partial output of this version")
            theirs = header["settings"]
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise PartialOutputError(f"{run_json} is unreadable ({one_line(exc)}); pass "
                                     f"--no-resume to start over") from None
        differ = [key for key in sorted(set(theirs) | set(self.settings))
                  if theirs.get(key) != self.settings.get(key)]
        if differ:
            what = "; ".join(f"{key}: {theirs.get(key)!r} there, {self.settings.get(key)!r} now"
                             for key in differ[:3])
            raise PartialOutputError(
                f"the partial output {self.directory} was made with other settings ({what}); "
                f"rerun with those settings to resume, or pass --no-resume to start over")

    def _index(self, shard: Path) -> None:
        try:
            with np.load(shard, allow_pickle=False) as data:
                paths, sizes, stamps = data["paths"], data["size"], data["mtime_ns"]
                names = [name for name in self.settings.get("encoders", []) if name in data.files]
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise PartialOutputError(f"damaged shard {shard} ({one_line(exc)}); pass "
                                     f"--no-resume to start over") from None
        if len(names) != len(self.settings.get("encoders", [])):
            raise PartialOutputError(f"shard {shard} lacks features of "
                                     f"{self.settings.get('encoders')}; pass --no-resume")
        for row, (path, size, stamp) in enumerate(zip(paths, sizes, stamps)):
            self._records[str(path)] = (shard.name, row, int(size), int(stamp))
        number = int(shard.name[len("shard-"):-len(".npz")])
        self._next = max(self._next, number + 1)

    # -- reading --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def is_done(self, path: str) -> bool:
        """True when ``path`` has a saved row and the file has not changed since."""
        record = self._records.get(path)
        return record is not None and record[2:] == _file_stamp(path)

    def rows(self, paths: Sequence[str], dims: Mapping[str, int]) -> dict[str, np.ndarray]:
        """{encoder: (len(paths), D) float32} for saved paths, in the order given."""
        out = {name: np.zeros((len(paths), dim), np.float32) for name, dim in dims.items()}
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for position, path in enumerate(paths):
            shard, row = self._records[path][:2]
            by_shard.setdefault(shard, []).append((position, row))
        for shard, pairs in by_shard.items():
            positions, rows = (np.asarray(v) for v in zip(*pairs))
            with np.load(self.directory / shard, allow_pickle=False) as data:
                for name in out:
                    out[name][positions] = data[name][rows]
        return out

    # -- writing --------------------------------------------------------------

    def append(self, paths: Sequence[str], features: Mapping[str, np.ndarray]) -> None:
        """Saves the rows of ``paths`` as a new shard (complete or absent)."""
        if not paths:
            return
        stamps = np.asarray([_file_stamp(p) for p in paths], np.int64).reshape(-1, 2)
        name = _SHARD.format(self._next)
        arrays = {"paths": np.asarray(list(paths), dtype=str), "size": stamps[:, 0],
                  "mtime_ns": stamps[:, 1]}
        arrays.update({k: np.asarray(v, np.float32) for k, v in features.items()})
        try:
            write_npz(self.directory / name, arrays)
        except OSError as exc:
            raise PartialOutputError(f"cannot write {self.directory / name}: "
                                     f"{one_line(exc)}") from None
        self._next += 1
        for row, path in enumerate(paths):
            self._records[path] = (name, row, int(stamps[row, 0]), int(stamps[row, 1]))

    def close(self) -> None:
        """Releases the folder (keeps it)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def remove(self) -> None:
        """Deletes the folder (after the final output is written)."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def has_shards(self) -> bool:
        return any(self.directory.glob("shard-*.npz"))
