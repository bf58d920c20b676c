"""Re-IQA features on disk: the ``.npz`` that ``reiqa extract`` writes, and the shard store.

**The features file.** Keys (every string array is numpy unicode, no pickle):

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

**The shard store** (:class:`ShardStore`): finished rows saved while a long
run goes on, so that an interrupted run loses only what it had not saved and
a rerun computes only the rest. ``reiqa extract`` keeps it beside its output
(``OUT.npz.partial/``, removed once the output is written), ``reiqa score``
beside its CSV, ``reiqa evaluate`` in ``OUT/features/`` (kept, a cache)::

    run.json            {"format": "reiqa-extract-partial", "version": 1,
                         "settings": {...what the rows depend on...}}
    lock                locked (flock) by the run that writes here
    shard-000001.npz    paths (k,) str, size (k,) int64, mtime_ns (k,) int64,
    shard-000002.npz    and one (k, D) float32 array per block (e.g. quality,
    ...                 content)

    failed.json         {path: [size, mtime_ns, reason]} of inputs that failed,
                        when the owner records them (``evaluate`` does)

A shard is written under a temporary name and renamed, so it is complete or
absent. A row (or a recorded failure) is reused only while its image file
keeps the recorded size and modification time, and only under the same
``settings`` (the checkpoints' :func:`folder_fingerprint`, compute dtype,
...). ``extract`` and ``score`` record no failures: a rerun tries them again.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from reiqa_jax.errors import ReiqaError, one_line

ENCODERS = ("quality", "content")
FEATURE_ORDER = ("content", "quality")  # the Re-IQA feature is content ⊕ quality
COLUMN_PREFIX = "column_"
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


class FeaturesError(ReiqaError, ValueError):
    """A features file that cannot be read or used; the message is one line."""


class ShardStoreError(ReiqaError, ValueError):
    """A shard store that cannot be used or written; the message is one line."""


def npz_path(path) -> Path:
    """``path`` with ``.npz`` appended unless it already ends so (numpy's own rule)."""
    path = Path(path)
    return path if path.name.endswith(".npz") else path.with_name(path.name + ".npz")


def is_numpy_file(path) -> bool:
    """True when ``path`` starts like a ``.npz`` (zip) or ``.npy`` file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(6)
    except OSError:
        return False
    return head.startswith(_ZIP_MAGIC) or head == _NPY_MAGIC


# ----------------------------------------------------------------------------
# the features file

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

    @property
    def blocks(self) -> dict[str, np.ndarray]:
        """{"content": (N, D), "quality": (N, D)}: the encoders present, content first."""
        return {name: getattr(self, name) for name in FEATURE_ORDER
                if getattr(self, name) is not None}

    @property
    def checkpoints(self) -> dict[str, str]:
        """{"quality": folder, "content": folder} that made the features ('' when unknown)."""
        return {"quality": self.quality_ckpt or "", "content": self.content_ckpt or ""}

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """(N, sum of D) float32: the blocks ``names``, concatenated in that order."""
        return np.concatenate([self.blocks[name] for name in names], axis=1)

    def reiqa(self) -> np.ndarray:
        """The 8192-d Re-IQA feature: content ⊕ quality (both encoders needed)."""
        if self.quality is None or self.content is None:
            raise ValueError("the Re-IQA feature needs both the content and the quality encoder")
        return self.matrix(FEATURE_ORDER)

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


def write_npz(path, arrays: Mapping[str, np.ndarray]) -> None:
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
    rest to empty. Raises :class:`FeaturesError` (one line) for anything else:
    a missing file, another kind of file (a CSV given in its place), a damaged
    archive, or arrays that do not fit together.
    """
    path = Path(path)
    if not path.is_file():
        raise FeaturesError(f"cannot read features {path}: "
                            f"{'it is a folder' if path.is_dir() else 'no such file'}")
    if not is_numpy_file(path):
        raise FeaturesError(f"{path} is not a features .npz (reiqa extract -o FILE.npz "
                            f"writes one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FeaturesError(f"cannot read features {path}: {one_line(exc)}") from None
    if not isinstance(arrays, dict) or "paths" not in arrays:
        raise FeaturesError(f"{path} has no 'paths' array: not a reiqa extract file")
    paths = [str(p) for p in np.asarray(arrays["paths"]).reshape(-1)]

    def strings(key, default):
        return [str(v) for v in np.asarray(arrays[key]).reshape(-1)] if key in arrays \
            else list(default)

    blocks = {name: np.asarray(arrays[name]) for name in ENCODERS if name in arrays}
    if not blocks:
        raise FeaturesError(f"{path} has neither 'quality' nor 'content' features")
    for name, block in blocks.items():
        if block.ndim != 2 or block.shape[0] != len(paths):
            raise FeaturesError(f"{path}: '{name}' has shape {block.shape} for "
                                f"{len(paths)} paths")
    failed = strings("failed", [])
    return Features(
        paths=paths, quality=blocks.get("quality"), content=blocks.get("content"),
        failed=failed, errors=strings("errors", [""] * len(failed)),
        entries=strings("entries", paths), failed_entries=strings("failed_entries", failed),
        columns={key[len(COLUMN_PREFIX):]: strings(key, []) for key in arrays
                 if key.startswith(COLUMN_PREFIX)},
        quality_ckpt=_scalar_text(arrays.get("quality_ckpt")),
        content_ckpt=_scalar_text(arrays.get("content_ckpt")),
    )


def _scalar_text(value) -> str:
    """A 0-d (or one-element) string array as str; '' when absent or empty."""
    if value is None or np.size(value) == 0:
        return ""
    return str(np.asarray(value).reshape(-1)[0])


# ----------------------------------------------------------------------------
# the shard store

FORMAT = "reiqa-extract-partial"
VERSION = 1
PARTIAL_SUFFIX = ".partial"
RUN_JSON = "run.json"
FAILED_JSON = "failed.json"
LOCK = "lock"
_SHARD = "shard-{:06d}.npz"


def partial_dir(final) -> Path:
    """The shard folder kept beside a final output while it is being made."""
    final = Path(final)
    return final.with_name(final.name + PARTIAL_SUFFIX)


def folder_fingerprint(directory) -> str:
    """A digest of a folder (an encoder checkpoint, a model folder): every file's
    relative name, size and modification time, and the bytes of its top-level
    ``.json`` files (a checkpoint's ``reiqa.json``)."""
    digest = hashlib.sha256()
    directory = Path(directory)
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        info = path.stat()
        digest.update(f"{path.relative_to(directory)}\0{info.st_size}\0{info.st_mtime_ns}\n"
                      .encode())
        if path.suffix == ".json" and path.parent == directory:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _file_stamp(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of a file, (-1, -1) when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return -1, -1
    return info.st_size, info.st_mtime_ns


class ShardStore:
    """A folder of shards (see the module docstring), opened and locked for this run.

    directory: the folder. settings: JSON-able description of what the rows
    depend on. blocks: the array names each row holds (e.g. ("quality",
    "content")). resume: reuse the rows of an earlier run (else they are
    discarded). if_changed: when the folder was made with other settings,
    "refuse" (raise, naming the keys that differ) or "discard" (start over;
    ``changed`` then lists those keys). owner: the command, for the message
    when another run holds the lock. Raises ShardStoreError (one line).
    """

    def __init__(self, directory, settings: Mapping, *, blocks: Sequence[str],
                 resume: bool = True, if_changed: str = "refuse", owner: str = "reiqa extract"):
        if if_changed not in ("refuse", "discard"):
            raise ValueError(f"if_changed must be 'refuse' or 'discard', not {if_changed!r}")
        self.directory = Path(directory)
        self.settings = json.loads(json.dumps(dict(settings)))
        self.blocks = tuple(blocks)
        self.owner = owner
        self.changed: list[str] = []
        # path -> (shard file name, row, size, mtime_ns); later shards win.
        self._records: dict[str, tuple[str, int, int, int]] = {}
        self._failures: dict[str, tuple[int, int, str]] = {}
        self._stored = 0  # rows in the shards, superseded ones included
        self._next = 1
        self._lock = None
        try:
            self._open(resume, if_changed)
        except OSError as exc:
            self.close()
            raise ShardStoreError(f"cannot write {self.directory}: {one_line(exc)}") from None
        except ShardStoreError:
            self.close()
            raise

    def _open(self, resume: bool, if_changed: str) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        if self.directory.exists() and not self.directory.is_dir():
            raise ShardStoreError(f"{self.directory} exists and is not a folder")
        self.directory.mkdir(exist_ok=True)
        self._lock = open(self.directory / LOCK, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ShardStoreError(f"another {self.owner} is writing to {self.directory}; "
                                  f"wait for it or stop it first") from None
        for leftover in self.directory.glob("*.tmp-*"):  # from a run that was killed
            leftover.unlink()
        run_json = self.directory / RUN_JSON
        shards = sorted(self.directory.glob("shard-*.npz"))
        if resume and run_json.exists():
            self.changed = self._differences(run_json, refuse=if_changed == "refuse")
            resume = not self.changed
        failed_json = self.directory / FAILED_JSON
        if resume:
            for shard in shards:
                self._index(shard)
            self._failures = _read_failures(failed_json)
        else:
            for shard in shards:
                shard.unlink()
            failed_json.unlink(missing_ok=True)
        header = {"format": FORMAT, "version": VERSION, "settings": self.settings}
        tmp = run_json.with_name(f"{RUN_JSON}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(header, indent=1, sort_keys=True))
        os.replace(tmp, run_json)

    def _differences(self, run_json: Path, *, refuse: bool) -> list[str]:
        """The settings keys that differ from those in ``run_json`` (raises when refusing)."""
        try:
            header = json.loads(run_json.read_text())
            if header.get("format") != FORMAT or header.get("version") != VERSION:
                raise ValueError("not a shard store of this version")
            theirs = header["settings"]
            keys = sorted(set(theirs) | set(self.settings))
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            if not refuse:
                return ["run.json"]
            raise ShardStoreError(f"{run_json} is unreadable ({one_line(exc)}); pass "
                                  f"--no-resume to start over") from None
        differ = [key for key in keys if theirs.get(key) != self.settings.get(key)]
        if differ and refuse:
            what = "; ".join(f"{key}: {theirs.get(key)!r} there, {self.settings.get(key)!r} now"
                             for key in differ[:3])
            raise ShardStoreError(
                f"the partial output {self.directory} was made with other settings ({what}); "
                f"rerun with those settings to resume, or pass --no-resume to start over")
        return differ

    def _index(self, shard: Path) -> None:
        try:
            with np.load(shard, allow_pickle=False) as data:
                paths, sizes, stamps = data["paths"], data["size"], data["mtime_ns"]
                names = [name for name in self.blocks if name in data.files]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ShardStoreError(f"damaged shard {shard} ({one_line(exc)}); pass "
                                  f"--no-resume to start over") from None
        if len(names) != len(self.blocks):
            raise ShardStoreError(f"shard {shard} lacks rows of {list(self.blocks)}; "
                                  f"pass --no-resume")
        for row, (path, size, stamp) in enumerate(zip(paths, sizes, stamps)):
            self._records[str(path)] = (shard.name, row, int(size), int(stamp))
        self._stored += len(paths)
        number = int(shard.name[len("shard-"):-len(".npz")])
        self._next = max(self._next, number + 1)

    # -- reading --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def is_done(self, path: str) -> bool:
        """True when ``path`` has a saved row and the file has not changed since."""
        record = self._records.get(path)
        return record is not None and record[2:] == _file_stamp(path)

    def failure(self, path: str) -> str | None:
        """The recorded reason ``path`` failed, while the file is unchanged; else None."""
        record = self._failures.get(path)
        return record[2] if record is not None and record[:2] == _file_stamp(path) else None

    def rows(self, paths: Sequence[str],
             dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
        """{block: (len(paths), D) float32} for saved paths, in the order given.
        dims: {block: D}, needed only when ``paths`` is empty (else read from the shards)."""
        out = {name: np.zeros((len(paths), dim), np.float32)
               for name, dim in (dims or {}).items()}
        if not out and not paths:
            out = {name: np.zeros((0, 0), np.float32) for name in self.blocks}
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for position, path in enumerate(paths):
            shard, row = self._records[path][:2]
            by_shard.setdefault(shard, []).append((position, row))
        for shard, pairs in by_shard.items():
            positions, rows = (np.asarray(v) for v in zip(*pairs))
            with np.load(self.directory / shard, allow_pickle=False) as data:
                for name in self.blocks:
                    if name not in out:
                        out[name] = np.zeros((len(paths), data[name].shape[1]), np.float32)
                    out[name][positions] = data[name][rows]
        return out

    def has_shards(self) -> bool:
        return any(self.directory.glob("shard-*.npz"))

    # -- writing --------------------------------------------------------------

    def append(self, paths: Sequence[str], rows: Mapping[str, np.ndarray]) -> None:
        """Saves the rows of ``paths`` as a new shard (complete or absent)."""
        if not paths:
            return
        stamps = np.asarray([_file_stamp(p) for p in paths], np.int64).reshape(-1, 2)
        name = _SHARD.format(self._next)
        arrays = {"paths": np.asarray(list(paths), dtype=str), "size": stamps[:, 0],
                  "mtime_ns": stamps[:, 1]}
        arrays.update({k: np.asarray(v, np.float32) for k, v in rows.items()})
        try:
            write_npz(self.directory / name, arrays)
        except OSError as exc:
            raise ShardStoreError(f"cannot write {self.directory / name}: "
                                  f"{one_line(exc)}") from None
        self._next += 1
        self._stored += len(paths)
        for row, path in enumerate(paths):
            self._records[path] = (name, row, int(stamps[row, 0]), int(stamps[row, 1]))

    def record_failures(self, failures: Mapping[str, str]) -> None:
        """Records why inputs failed (``failed.json``), so that a rerun skips them
        while their files stay as they are."""
        if not failures:
            return
        for path, message in failures.items():
            self._failures[path] = (*_file_stamp(path), str(message))
        self._write_failures()

    def _write_failures(self) -> None:
        target = self.directory / FAILED_JSON
        tmp = target.with_name(f"{FAILED_JSON}.tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps({p: list(r) for p, r in self._failures.items()}, indent=0))
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ShardStoreError(f"cannot write {target}: {one_line(exc)}") from None

    def compact(self, keep: Sequence[str]) -> bool:
        """Rewrites the store as one shard of the saved rows of ``keep`` (and keeps
        only their failures) when it holds anything else: superseded rows, images
        no longer asked for. Returns whether it did. For a store kept as a cache."""
        keep = dict.fromkeys(keep)
        stale = [path for path in self._failures if path not in keep]
        for path in stale:
            del self._failures[path]
        if stale:
            self._write_failures()
        kept = [path for path in keep if self.is_done(path)]
        if self._stored == len(kept) and len(self._records) == len(kept):
            return False
        old = sorted(self.directory.glob("shard-*.npz"))
        rows = self.rows(kept)
        self._records, self._stored = {}, 0
        self.append(kept, rows)  # numbered after every old shard
        for shard in old:
            shard.unlink()
        return True

    def close(self) -> None:
        """Releases the folder (keeps it)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def remove(self) -> None:
        """Deletes the folder (after the final output is written)."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _read_failures(path: Path) -> dict[str, tuple[int, int, str]]:
    """failed.json as {path: (size, mtime_ns, reason)}; empty when absent or unreadable
    (the failures are then tried again)."""
    try:
        records = json.loads(path.read_text())
        return {str(p): (int(r[0]), int(r[1]), str(r[2])) for p, r in records.items()}
    except (OSError, ValueError, TypeError, AttributeError, IndexError):
        return {}


def fill_store(store: ShardStore, batches: Iterable, keys: Sequence[str], *,
               should_stop: Callable[[], bool] = lambda: False, save_every: float = 10.0,
               on_batch: Callable[[int], None] | None = None) -> tuple[dict[str, str], bool]:
    """Saves into ``store`` the rows of ``batches`` as they come.

    batches: results with ``indices`` (positions in ``keys``), ``features``
    ({block: (len(indices), D)}) and ``failures`` ([(position, reason)]), as
    ``FeatureExtractor.iter_batches`` yields them. Rows are saved at least
    every ``save_every`` seconds, every 1024 rows, at the end, and as soon as
    ``should_stop()`` is true (then the iteration stops). ``on_batch(n)`` is
    called with the number of inputs each batch settled. Returns ({key:
    reason} of the inputs that failed, whether it stopped early).
    """
    failures: dict[str, str] = {}
    pending_keys: list[str] = []
    pending: dict[str, list] = {name: [] for name in store.blocks}
    last_save = time.monotonic()

    def save() -> None:
        nonlocal last_save
        if pending_keys:
            store.append(pending_keys, {name: np.stack(rows).astype(np.float32)
                                        for name, rows in pending.items()})
            pending_keys.clear()
            for rows in pending.values():
                rows.clear()
        last_save = time.monotonic()

    try:
        for result in batches:
            for index, message in result.failures:
                failures[keys[index]] = message
            pending_keys.extend(keys[i] for i in result.indices)
            for name in store.blocks:
                if result.indices:
                    pending[name].extend(result.features[name])
            if on_batch is not None:
                on_batch(len(result.indices) + len(result.failures))
            stop = should_stop()
            if time.monotonic() - last_save >= save_every or len(pending_keys) >= 1024 or stop:
                save()
            if stop:
                return failures, True
        save()
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # cancels the decoding of batches not started
    return failures, False
