"""The demo's training run and the encoders along its learning curve.

The run is ``reiqa train`` with ``configs/demo.py`` (plus overrides). The
curve's encoders come from the run's own checkpoints: 0 % is the network the
run started from (the trainer's seeded init, ``ReIQAModel(...,
rngs=nnx.Rngs(seed))``), 25 % and 50 % are exported from the checkpoints at
those steps (``reiqa export``), 100 % is the run's ``model/``.
"""
from __future__ import annotations

import functools
from pathlib import Path

from reiqa_jax.errors import ReiqaError

CURVE = (0.0, 0.25, 0.5, 1.0)


def curve_steps(total_steps: int, fractions=CURVE) -> list[int]:
    """The step of each fraction of training (rounded down; 0 stays 0)."""
    return [int(f * total_steps) for f in fractions]


def demo_config(overrides: dict | None = None):
    """``configs/demo.py`` with ``overrides`` ({key: value}, as ``--config.KEY=VALUE``)."""
    from reiqa_jax.config_file import apply_overrides, load_config

    config = load_config("demo")
    apply_overrides(config, [(k, str(v)) for k, v in (overrides or {}).items()])
    return config


class DemoError(ReiqaError, ValueError):
    """The demo cannot run as asked; the message is one line."""


class TrainingStopped(ReiqaError):
    """The training run stopped before its end (a signal, or a failed step,
    already reported by the trainer); ``status`` is its exit status."""

    def __init__(self, status: int):
        super().__init__(f"training stopped (exit status {status}); run the same command "
                         f"to continue from its last checkpoint")
        self.status = status


def prepare(config, workdir) -> None:
    """Sets the checkpoint interval so that every step of :func:`curve_steps` is
    kept, and refuses (DemoError) a ``workdir`` that holds a run of other settings."""
    import math

    from reiqa_jax.config_schema import differences
    from reiqa_jax.workdir import read_record

    total = config.num_steps
    marks = [s for s in curve_steps(total) if 0 < s < total]
    if marks:
        # Every curve step is a multiple of the interval; keep every checkpoint
        # the run writes (the interval's and one per epoch end).
        interval = math.gcd(*marks)
        config.checkpoint_every_steps = interval
        config.keep_checkpoints = total // interval + total // steps_per_epoch(config) + 2
    stored = read_record(Path(workdir))  # (flat config, the trainer's record) or None
    if stored is not None:
        differ = [f"{key}: {old!r} there, {new!r} now"
                  for key, (old, new) in differences(stored[0], config).items()]
        if differ:
            raise DemoError(f"{Path(workdir).parent} holds a demo run with other settings "
                            f"({'; '.join(differ[:3])}); choose another --workdir or delete it")


# The demo's own lock in its workdir (its training holds train/lock as well).
DEMO_LOCK = "demo.lock"


def check_workdir(workdir: Path) -> None:
    """Refuses (DemoError) a ``workdir`` the demo must not write into: a file,
    or a folder of other things (a demo folder holds ``train/``; an empty or
    new folder is taken). Its model folder is checked as ``reiqa score``'s."""
    from reiqa_jax.output_paths import check_output_folder
    from reiqa_jax.scoring.model_dir import check_model_target

    check_output_folder(workdir, kind="demo", marker=("train", DEMO_LOCK), overwrite=True,
                        error=DemoError, what="demo's outputs")
    check_model_target(workdir / "model", overwrite=True)


def train(config, workdir) -> Path:
    """Runs (or finishes) the training of a :func:`prepare`-d config in ``workdir``;
    returns the final model folder."""
    from reiqa_jax.train import train_and_evaluate

    status = train_and_evaluate(config, workdir)
    if status != 0:
        raise TrainingStopped(status)
    return Path(workdir) / "model"


def random_encoder(directory, arch: dict, seed: int) -> Path:
    """A ReIQAModel of ``arch`` at its seeded init (the trainer's init for that
    seed; jitted as the trainer's, one compilation for every seed)."""
    import jax
    from flax import nnx

    from reiqa_jax.checkpoint import save_model

    directory = Path(directory)
    if not (directory / "reiqa.json").exists():
        graphdef, init = _init_program(arch["depth"], arch["width"], arch["feat_dim"])
        save_model(directory, nnx.merge(graphdef, init(jax.random.key(seed))),
                   meta={"source": f"random init (seed {seed})"}, overwrite=True)
    return directory


@functools.lru_cache(maxsize=None)
def _init_program(depth: int, width: float, feat_dim: int):
    """(graphdef, jitted key -> state) of a ReIQAModel's init: one program per
    architecture, so the random inits of every seed compile once."""
    import jax
    from flax import nnx

    from reiqa_jax.models import ReIQAModel

    def make(rngs):
        return ReIQAModel(depth, width, feat_dim, rngs=rngs)

    graphdef, _ = nnx.split(nnx.eval_shape(lambda: make(nnx.Rngs(0))))
    return graphdef, jax.jit(lambda key: nnx.split(make(nnx.Rngs(key)))[1])


def curve_encoders(config, workdir, out) -> dict[int, Path]:
    """{step: encoder folder} at every step of :func:`curve_steps` of a finished run."""
    from reiqa_jax.export import export_run

    workdir, out = Path(workdir), Path(out)
    arch = {"depth": config.model.depth, "width": config.model.width,
            "feat_dim": config.model.feat_dim}
    total = config.num_steps
    encoders = {}
    for step in curve_steps(total):
        if step == 0:
            encoders[step] = random_encoder(out / "step_0", arch, config.seed)
        elif step == total:
            encoders[step] = workdir / "model"
        else:
            target = out / f"step_{step}"
            if not (target / "reiqa.json").exists():
                export_run(workdir, target, step=step)
            encoders[step] = target
    return encoders


def steps_per_epoch(config) -> int:
    """Steps of one epoch of ``config.data`` (one device: the global batch is batch_size)."""
    from reiqa_jax.data.sources import count_images

    return -(-count_images(config.data) // config.batch_size)


def set_recipe(config, *, steps: int | None = None, warmup_fraction: float | None = None,
               queue_steps: float | None = None) -> None:
    """Sets the run length, the warmup as a fraction of it (the trainer counts it in
    epochs) and the queue as a number of steps of keys, in place."""
    from reiqa_jax.train import pairs_per_image

    if steps is not None:
        config.num_steps = int(steps)
    if warmup_fraction is not None:
        config.warmup_epochs = warmup_fraction * config.num_steps / steps_per_epoch(config)
    if queue_steps is not None:
        config.queue_size = int(round(queue_steps * config.batch_size * pairs_per_image(config)))
