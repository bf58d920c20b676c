"""bfloat16 vs float32 training: the same run twice, loss curves side by side.

Trains one config (default: configs/smoke.py on the bundled photos) twice,
each in a fresh `reiqa train` process with the same seed and data order:
once with float32 compute, once with bfloat16 compute (parameters, optimizer
state, BatchNorm statistics and queue stay float32 in both). Prints the loss
and top-1 of both per logged step and how far apart they end up, so that a
GPU session can check that bfloat16 training follows float32 training.

    .venv/bin/python benchmarks/loss_curves.py                       # smoke, 60 steps
    .venv/bin/python benchmarks/loss_curves.py --steps 200 --write-results
    .venv/bin/python benchmarks/loss_curves.py --config reiqa_quality_r50 \\
        --set data=/data/train.csv --steps 300                        # the real recipe

On CPU bfloat16 is slower than float32 (XLA widens it); the comparison is for
accelerators, where bfloat16 is the default (`dtype="auto"`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import cpu_name, write_block  # noqa: E402  (benchmarks/common.py)

BEGIN, END = "<!-- loss-curves:begin -->", "<!-- loss-curves:end -->"


def train(workdir: Path, config: str, steps: int, dtype: str, settings: list[str]) -> list[dict]:
    """One `reiqa train` run of ``steps`` steps; returns its metrics.jsonl records."""
    command = [sys.executable, "-m", "reiqa_jax.cli", "train", "--config", config,
               "--workdir", str(workdir), f"--config.dtype={dtype}",
               f"--config.num_steps={steps}", "--config.log_every_steps=1",
               f"--config.checkpoint_every_steps={steps}",
               *[f"--config.{item}" for item in settings]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"loss_curves: {dtype} run failed: {done.stderr.strip()[-2000:]}")
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def compare(f32: list[dict], bf16: list[dict]) -> dict:
    """Distances between the two curves (first and last tenth: means over ``window`` steps)."""
    a = np.asarray([m["loss"] for m in f32])
    b = np.asarray([m["loss"] for m in bf16])
    n = min(len(a), len(b))
    window = max(1, n // 10)
    tail = slice(max(0, n - window), n)
    return {
        "steps": n,
        "window": window,
        "max_abs_loss_difference": float(np.abs(a[:n] - b[:n]).max()),
        "final_loss_float32": float(a[tail].mean()),
        "final_loss_bfloat16": float(b[tail].mean()),
        "final_relative_difference": float(abs(b[tail].mean() - a[tail].mean())
                                           / abs(a[tail].mean())),
        "loss_drop_float32": float(a[:min(window, n)].mean() - a[tail].mean()),
        "loss_drop_bfloat16": float(b[:min(window, n)].mean() - b[tail].mean()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="smoke", help="config name or file (default: smoke)")
    p.add_argument("--steps", type=int, default=60, help="training steps per run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for both runs (repeatable)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the two runs here")
    p.add_argument("--write-results", action="store_true", help="record in RESULTS.md")
    args = p.parse_args(argv)

    import jax

    root = args.workdir or Path(tempfile.mkdtemp(prefix="reiqa-loss-curves-"))
    start = time.perf_counter()
    runs = {dtype: train(root / dtype, args.config, args.steps, dtype, args.set)
            for dtype in ("float32", "bfloat16")}
    summary = compare(runs["float32"], runs["bfloat16"])
    device = jax.devices()[0]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"### bfloat16 vs float32 training, {when}, {device.platform} ({device.device_kind})",
        "",
        f"`python benchmarks/loss_curves.py --config {args.config} --steps {args.steps}"
        + "".join(f" --set {s}" for s in args.set) + f"` (jax {jax.__version__}; CPU: "
        f"{cpu_name()}, {os.cpu_count()} threads; {time.perf_counter() - start:.0f} s)",
        "",
        "| step | loss float32 | loss bfloat16 | top-1 float32 | top-1 bfloat16 |",
        "|---:|---:|---:|---:|---:|",
    ]
    every = max(1, summary["steps"] // 12)
    for i in range(0, summary["steps"], every):
        a, b = runs["float32"][i], runs["bfloat16"][i]
        lines.append(f"| {a['step']} | {a['loss']:.4f} | {b['loss']:.4f} | {a['acc']:.1f} | "
                     f"{b['acc']:.1f} |")
    lines += ["", "Over the last {window} steps: loss {final_loss_float32:.4f} (float32) vs "
              "{final_loss_bfloat16:.4f} (bfloat16), {final_relative_difference:.1%} apart; "
              "the loss fell by {loss_drop_float32:.3f} / {loss_drop_bfloat16:.3f} from the "
              "first {window} steps; largest per-step difference "
              "{max_abs_loss_difference:.4f}.".format(**summary)]
    text = "\n".join(lines)
    print(text)
    print(json.dumps(summary))
    if args.write_results:
        write_block(BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
