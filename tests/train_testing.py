"""Helpers for the trainer tests: a tiny photo folder, a tiny config (with
the cheap ``stand_in`` distortions of ``reiqa_jax.augment.op_sets``: the
trainer tests exercise the loop, the real ops have their own tests), and
running ``reiqa train`` as a real process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The smoke recipe shrunk further for tests (each key is a --config override).
# Whole pictures: write_photos' widths 91-100 at multiples of 32 make two
# canvases (96 x 96, 96 x 128), so runs switch between compiled steps.
TINY = {
    "model.depth": 10, "model.width": 0.25, "model.feat_dim": 16,
    "batch_size": 4, "num_epochs": 2, "queue_size": 128, "learning_rate": 1.0,
    "views.patch_size": 32, "views.n_aug": 1, "views.ops": "stand_in",
    "canvas.step": 32, "log_every_steps": 1, "checkpoint_every_steps": 2,
    "warmup_epochs": 1, "input.workers": 0, "input.threads": 2,
}


def write_photos(folder: Path, n: int = 10) -> Path:
    """n small real photos (crops of scikit-image's bundled photos) as JPEG/PNG."""
    from PIL import Image

    from reiqa_jax.data.sample_photos import COLOR, load_sample_photo

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = load_sample_photo(COLOR[i % len(COLOR)])
        y, x = (17 * i) % 64, (29 * i) % 96
        crop = Image.fromarray(img[y:y + 160, x:x + 200]).resize((100 - i, 80 + i))
        crop.save(folder / f"photo_{i:02d}.{'png' if i % 2 else 'jpg'}")
    return folder


def overrides(**extra) -> list[str]:
    cfg = dict(TINY, **extra)
    return [f"--config.{k}={v}" for k, v in cfg.items()]


# The trainer tests check what a run does (its log, checkpoints, resumption,
# signals, processes), not XLA's machine code: LLVM without optimisation
# compiles their tiny steps in about 2/3 of the time. Runs compared with each
# other all get it; nothing compares them with an in-process computation.
FAST_COMPILE = "--xla_backend_optimization_level=0"


def env(devices: int = 1) -> dict:
    # (the compilation cache folder of the session comes with os.environ: conftest.py)
    flags = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), FAST_COMPILE) if f)
    return dict(os.environ, JAX_NUM_CPU_DEVICES=str(devices), PYTHONUNBUFFERED="1",
                XLA_FLAGS=flags)


def train_cmd(workdir, data, *extra_args, **config) -> list[str]:
    return [sys.executable, "-m", "reiqa_jax.cli", "train", "--config", "smoke",
            "--workdir", str(workdir), f"--config.data={data}", *overrides(**config),
            *extra_args]


def run_train(workdir, data, *extra_args, devices: int = 1, timeout: int = 300, **config):
    return subprocess.run(train_cmd(workdir, data, *extra_args, **config), env=env(devices),
                          capture_output=True, text=True, timeout=timeout)


def metrics(workdir) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def comparable(records, keys=("step", "epoch", "loss", "acc", "lr", "skipped_images")):
    return [{k: r[k] for k in keys} for r in records]
