"""What a training run keeps in its workdir, and how it is written.

Layout of ``WORKDIR``::

    config.json      the resolved config (written by process 0 at every start)
    run.json         git revision of the code, command line, jax and devices
    metrics.jsonl    one JSON object per logged step (``MetricLog``)
    tensorboard/     TensorBoard events (the same scalars)
    checkpoints/     orbax CheckpointManager: ``<step>/state`` (train state),
                     ``<step>/meta`` (JSON: step, epoch, devices)
    model/           the trained model in the checkpoint format ``reiqa
                     extract`` reads (written at the end, or ``reiqa export``)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax

from reiqa_jax.errors import ReiqaError


class WorkdirError(ReiqaError, OSError):
    """The workdir cannot be used; the message is one line."""


def ensure_writable(workdir: Path) -> Path:
    """Creates ``workdir`` and proves a file can be written there."""
    workdir = Path(workdir).expanduser().absolute()
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


def save_run_info(workdir: Path, config) -> None:
    """config.json and run.json (process 0 only)."""
    if jax.process_index() != 0:
        return
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=1, sort_keys=True))
    devices = jax.devices()
    info = {"git": git_revision(), "argv": sys.argv, "jax": jax.__version__,
            "backend": jax.default_backend(), "processes": jax.process_count(),
            "devices": len(devices), "device_kind": devices[0].device_kind,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (workdir / "run.json").write_text(json.dumps(info, indent=1))


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
