"""Both encoders on one CPU device vs. on two virtual CPU devices side by side.

`reiqa extract` gives the CPU backend two devices and runs the quality and
content encoders one on each (reiqa_jax/cpu_devices.py). This times, in one
process and in interleaved rounds (so that both see the same machine load),
the mixed-size folder of benchmarks/extract_mixed.py with

* one device: both encoders on device 0, one after the other;
* two devices, encoders split: quality on device 0, content on device 1;
* two devices, shared: both encoders split each step's canvases over both;
* two devices, encoders split, ``low_memory=True``: every step compiled with
  XLA's default CPU pipeline (YNNPACK), which the default gives up where the
  memory allows (reiqa_jax/extract.py, NO_YNNPACK).

Programs are compiled before timing; features are checked to be equal.

    .venv/bin/python benchmarks/extract_devices.py [--rounds 3] [--write-results]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30, help="photos (of as many sizes)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best of)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)

    from reiqa_jax.cpu_devices import use_cpu_devices

    os.environ.pop("JAX_NUM_CPU_DEVICES", None)
    use_cpu_devices(2)
    import jax
    import numpy as np

    from common import cpu_name
    from extract_mixed import make_checkpoints, record, write_photos
    from reiqa_jax.checkpoint import load_model
    from reiqa_jax.extract import FeatureExtractor

    root = args.workdir or Path(tempfile.mkdtemp(prefix="reiqa-devices-"))
    root.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in write_photos(root / "photos", args.count)]
    ckpts = make_checkpoints(root) if not (root / "quality").exists() else {
        name: root / name for name in ("quality", "content")}
    models = {name: load_model(ckpts[name]) for name in ("quality", "content")}
    pair = dict(quality_model=models["quality"], content_model=models["content"],
                compile_cache=False)
    sides = {
        "one device, encoders one after the other": FeatureExtractor(
            **pair, devices=jax.devices()[:1]),
        "two devices, one encoder on each (the CPU default)": FeatureExtractor(**pair),
        "two devices, both encoders split each step": FeatureExtractor(
            **pair, encoder_devices="shared"),
        "two devices, one encoder on each, low_memory=True (YNNPACK kept)": FeatureExtractor(
            **pair, low_memory=True),
    }
    features = {name: side.extract(paths, progress=False) for name, side in sides.items()}
    first = next(iter(features.values()))
    worst = max(float(np.abs(getattr(f, n) - getattr(first, n)).max()
                      / np.abs(getattr(first, n)).max())
                for f in features.values() for n in ("quality", "content"))
    best = {name: float("inf") for name in sides}
    for _ in range(args.rounds):
        for name, side in sides.items():
            start = time.perf_counter()
            side.extract(paths, progress=False)
            best[name] = min(best[name], time.perf_counter() - start)
    base = best[next(iter(best))]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "### Encoders side by side on CPU (`benchmarks/extract_devices.py`)",
        "",
        f"- Date: {when}; command: `.venv/bin/python benchmarks/extract_devices.py "
        f"--rounds {args.rounds}`",
        f"- Device: jax {jax.__version__}, {os.cpu_count()} CPU threads; CPU: {cpu_name()}; "
        f"load average at the end: {os.getloadavg()[0]:.1f}",
        f"- The {len(paths)}-photo mixed-size folder of `extract_mixed.py`, both ResNet-50 "
        f"encoders, one process, programs compiled beforehand, best of {args.rounds} "
        f"interleaved rounds; largest difference between the sides' features: {worst:.1e} "
        "(max |delta| / max |feature|).",
        "",
        "| placement | seconds | speed vs one device |",
        "|---|---:|---:|",
    ]
    for name, seconds in best.items():
        lines.append(f"| {name} | {seconds:.1f} | {base / seconds:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        record("devices", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
