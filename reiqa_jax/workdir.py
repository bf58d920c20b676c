"""What a training run keeps in its workdir, and how it is written.

Layout of ``WORKDIR``::

    lock             held (flock) by the ``reiqa train`` writing here: one at a time
    config.json      the config the newest checkpoints were made with, plus
                     ``record``: the training images' count and fingerprint
                     and every change a restart took (``RunRecord``)
    run.json         git revision of the code, command line, jax and devices
                     of the latest start
    metrics.jsonl    one JSON object per logged step (``MetricLog``)
    tensorboard/     TensorBoard events (the same scalars)
    checkpoints/     orbax CheckpointManager: ``<step>/state`` (train state),
                     ``<step>/meta`` (JSON: step, epoch, devices)
    model/           the trained model in the checkpoint format ``reiqa
                     extract`` reads (written at the end, or ``reiqa export``)

config.json and run.json are written when a start has succeeded, just before
the first step (atomically), so a start that fails leaves them as they were.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax

from reiqa_jax.errors import ReiqaError, one_line

LOCK = "lock"
RECORD = "record"  # the one key of config.json that is not a config key


class WorkdirError(ReiqaError, OSError):
    """The workdir cannot be used; the message is one line."""


def ensure_writable(workdir: Path) -> Path:
    """Creates ``workdir`` and proves a file can be written there."""
    workdir = Path(workdir).expanduser().absolute()
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"workdir {workdir} is a file; give a folder")
    probe = workdir / f".write-test-{os.getpid()}-{jax.process_index()}"
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise WorkdirError(f"workdir {workdir} is not writable: {exc.strerror or exc}") from None
    return workdir


def git_revision() -> dict:
    """{'revision': sha or None, 'dirty': bool or None} of the code being run."""
    source = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], check=True,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(source), "status", "--porcelain",
                                     "--untracked-files=no"], check=True, capture_output=True,
                                    text=True, timeout=10).stdout.strip())
        return {"revision": rev, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


class RunLock:
    """``with RunLock(workdir):`` one ``reiqa train`` at a time in a workdir.

    An exclusive ``flock`` on ``WORKDIR/lock``: the kernel drops it when the
    holder ends, however it ends (Ctrl-C, SIGKILL), so there is nothing stale
    to clean up. A run of several processes holds it in process 0, which
    tells the others whether it got it, so every process of a second run
    stops with the same line instead of waiting on its peers.
    """

    def __init__(self, workdir: Path, program: str = "reiqa train", name: str = LOCK):
        self.path = Path(workdir) / name
        self.program = program
        self._fd: int | None = None

    def _take(self) -> str | None:
        """None when taken, else the holder's description."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            return holder or "another process"
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.program}, process {os.getpid()} on {os.uname().nodename}\n"
                  .encode(), 0)
        self._fd = fd
        return None

    def __enter__(self) -> "RunLock":
        import numpy as np

        holder = self._take() if jax.process_index() == 0 else None
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            taken = multihost_utils.broadcast_one_to_all(np.int32(holder is None))
            holder = None if int(taken) else (holder or "another run")
        if holder is not None:
            raise WorkdirError(f"{self.path.parent} is in use by {holder}; wait for that run "
                               f"to end or stop it first (one {self.program} per workdir)")
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def read_record(workdir: Path) -> tuple[dict, dict] | None:
    """(flat config, record) from ``WORKDIR/config.json``; None when there is
    none. The record (``RunRecord`` fields) is empty for runs made before it
    existed."""
    from reiqa_jax.config_schema import flatten

    path = Path(workdir) / "config.json"
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WorkdirError(f"cannot read {path}: {one_line(exc)}") from None
    record = stored.pop(RECORD, {}) or {}
    return flatten(stored), record


def resume_record(workdir: Path, config, *, images: int, images_sha256: str,
                  checkpoint_step: int | None, total_steps: int) -> dict:
    """The record this start writes into config.json (after the start succeeds).

    No checkpoint yet: a new record. Else the run goes on only with the
    images it started with and with a config that differs from the recorded
    one in ``length`` and ``safe`` keys alone (``config_schema``); the
    changes are appended to the record with the step they apply from.
    Raises WorkdirError (one line) otherwise.
    """
    from reiqa_jax.config_schema import LENGTH, KEYS, differences, refused

    fresh = {"images": images, "images_sha256": images_sha256, "changes": []}
    if checkpoint_step is None:
        return fresh
    stored = read_record(workdir)
    if stored is None:
        raise WorkdirError(f"{workdir} has checkpoints but no config.json, so how they were "
                           f"made is unknown; start a new --workdir")
    recorded, record = stored
    if record.get("images_sha256", images_sha256) != images_sha256:
        raise WorkdirError(
            f"the training images are not those the run in {workdir} was trained on "
            f"({record.get('images')} images then, {images} now, or the same number "
            f"changed or reordered): the data order would change; start a new --workdir")
    changes = differences(recorded, config)
    bad = refused(changes)
    if bad:
        shown = "; ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in bad[:4])
        more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
        raise WorkdirError(
            f"the run in {workdir} was made with another config ({shown}{more}): that changes "
            f"the model or the data order, so it cannot continue from its checkpoints; "
            f"keep those values or start a new --workdir")
    if checkpoint_step > total_steps:
        lengths = ", ".join(f"{k}={changes[k][1]}" for k in changes if KEYS[k].resume == LENGTH)
        raise WorkdirError(f"the run in {workdir} is at step {checkpoint_step}, past the "
                           f"{total_steps} steps this config asks for ({lengths or 'same length'})")
    out = dict(fresh, **{k: v for k, v in record.items() if k != "changes"})
    out["changes"] = list(record.get("changes", []))
    if changes:
        out["changes"].append({"step": checkpoint_step, "time": _now(),
                               "keys": {k: list(v) for k, v in changes.items()}})
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def save_run_info(workdir: Path, config, record: dict) -> None:
    """config.json (the config and its ``record``) and run.json; process 0
    only, each written to a temporary name and moved into place."""
    if jax.process_index() != 0:
        return
    stored = json.loads(config.to_json_best_effort())
    stored[RECORD] = record
    _write_atomic(Path(workdir) / "config.json", json.dumps(stored, indent=1, sort_keys=True))
    devices = jax.devices()
    info = {"git": git_revision(), "argv": sys.argv, "jax": jax.__version__,
            "backend": jax.default_backend(), "processes": jax.process_count(),
            "devices": len(devices), "device_kind": devices[0].device_kind, "started": _now()}
    _write_atomic(Path(workdir) / "run.json", json.dumps(info, indent=1))


def _import_summary_writer():
    """tensorboardX's SummaryWriter, imported without torch.

    tensorboardX imports torch when it is installed (the ``torch`` extra,
    for ``reiqa convert``), only to accept torch tensors; that import takes
    seconds at every start of a run, and we log Python floats. Hiding torch
    from that one import (unless something already imported it) makes
    tensorboardX fall back to numpy, as it does without torch.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # `import torch` now raises ImportError
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return SummaryWriter


class MetricLog:
    """metrics.jsonl + TensorBoard + a console line, on process 0.

    On a restart from step s, lines of steps after s (logged by the run that
    died after its last checkpoint) are dropped, so the file reads as one
    uninterrupted run.
    """

    def __init__(self, workdir: Path, *, resume_step: int, total_steps: int):
        self.enabled = jax.process_index() == 0
        self.total_steps = total_steps
        self.path = Path(workdir) / "metrics.jsonl"
        self._tb = None
        if not self.enabled:
            return
        if self.path.exists():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= resume_step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill
            self.path.write_text("".join(k + "\n" for k in kept))
        try:
            SummaryWriter = _import_summary_writer()
            self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"), purge_step=resume_step + 1)
        except ImportError:  # optional: metrics.jsonl has everything
            self._tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for name, value in record.items():
                if name != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"train/{name}", value, record["step"])
            self._tb.flush()
        print(f"step {record['step']}/{self.total_steps} epoch {record['epoch']} "
              f"loss {record['loss']:.4f} acc {record['acc']:.2f}% lr {record['lr']:.4g} "
              f"pairs/s {record['pairs_per_sec']:.1f} data-wait {100 * record['data_wait_frac']:.0f}% "
              f"skipped {record['skipped_images']}", flush=True)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


class Progress:
    """The running numbers of the log between two of its lines: pairs per
    second, the share of that time spent waiting for input, and the
    unreadable images skipped since the run began.

    pairs_per_step: crop pairs of one global step. skipped_images: the count
    a restored checkpoint carries. wait_seconds: the input pipeline's total
    wait so far (a callable, read at each log line).
    """

    def __init__(self, *, pairs_per_step: int, skipped_images: int = 0,
                 wait_seconds=lambda: 0.0):
        self.pairs_per_step = pairs_per_step
        self.skipped_images = skipped_images
        self._wait_seconds = wait_seconds
        self._since = time.perf_counter()
        self._waited = wait_seconds()
        self._steps = 0

    def count(self, *, skipped: int) -> None:
        """One more finished step, which replaced ``skipped`` unreadable images."""
        self._steps += 1
        self.skipped_images += skipped

    def record(self, step: int, epoch: int, metrics) -> dict:
        """The metrics.jsonl line of ``step`` (``metrics``: the step's host
        numbers); starts the next window."""
        now, waited = time.perf_counter(), self._wait_seconds()
        elapsed = max(now - self._since, 1e-9)
        line = {"step": step, "epoch": epoch, "loss": float(metrics["loss"]),
                "acc": float(metrics["acc"]), "lr": float(metrics["lr"]),
                "pairs_per_sec": self._steps * self.pairs_per_step / elapsed,
                "data_wait_frac": min(1.0, (waited - self._waited) / elapsed),
                "skipped_images": self.skipped_images,
                "grad_norm": float(metrics["grad_norm"])}
        self._since, self._waited, self._steps = now, waited, 0
        return line


def checkpoint_manager(workdir: Path, *, keep: int, read_only: bool = False):
    """orbax CheckpointManager for ``WORKDIR/checkpoints`` (async saves).

    ``read_only``: for reading a run from one process (``reiqa export``).
    """
    import orbax.checkpoint as ocp

    if read_only:  # what orbax would otherwise set itself, with a warning each
        options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                               save_interval_steps=0, max_to_keep=None,
                                               enable_async_checkpointing=False)
    else:
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=True)
    if read_only and jax.process_count() > 1:
        me = jax.process_index()
        options.multiprocessing_options = ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me})
    return ocp.CheckpointManager(Path(workdir) / "checkpoints", options=options,
                                 item_names=("state", "meta"))


def read_meta(manager, step: int) -> dict:
    """The JSON ``meta`` item of checkpoint ``step`` (cheap: no arrays)."""
    import orbax.checkpoint as ocp

    return dict(manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])


def save_checkpoint(manager, step: int, state_tree, meta: dict) -> None:
    import orbax.checkpoint as ocp

    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state_tree),
                                               meta=ocp.args.JsonSave(meta)), force=True)


def restore_checkpoint(manager, step: int, abstract_tree):
    """(state tree, meta dict) of checkpoint ``step``; ``abstract_tree`` gives
    shapes, dtypes and shardings."""
    import orbax.checkpoint as ocp

    out = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_tree), meta=ocp.args.JsonRestore()))
    return out["state"], out["meta"]
