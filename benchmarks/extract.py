"""Feature-extraction throughput: reiqa-jax vs the same ResNet-50 in PyTorch, one run.

Measures images/s of one encoder at both scales (the full image and the
half-size one, as `reiqa extract` computes them) on decoded uint8 batches,
so it times the model, not JPEG decoding. Both frameworks get the same
batches on the same machine in the same process; the ratio is jax / torch.

    .venv/bin/python benchmarks/extract.py                 # CPU, float32
    .venv/bin/python benchmarks/extract.py --dtype bfloat16 --batch-size 64   # GPU
    .venv/bin/python benchmarks/extract.py --write-results # append to RESULTS.md

PyTorch runs on CUDA when jax runs on a GPU and torch sees one, else on CPU.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]

from common import best_time, cpu_name  # noqa: E402  (benchmarks/common.py)
from reiqa_jax.extract import FeatureExtractor  # noqa: E402
from reiqa_jax.images import LoadedImage  # noqa: E402
from reiqa_jax.models import ReIQAModel  # noqa: E402

SIZES = ((384, 512), (768, 1024))  # (H, W): 512x384 and 1024x768


def bench_jax(model, full, half, dtype) -> callable:
    """One step of `reiqa extract` on a full batch of one size: both scales, one encoder."""
    extractor = FeatureExtractor(quality_model=model, batch_size=full.shape[0],
                                 compile_cache=False)
    images = {i: LoadedImage(full=full[i], half=half[i]) for i in range(full.shape[0])}
    steps = extractor._bucket_steps(list(images), full.shape[1:3], full.shape[0])

    def run():
        for step in steps:
            _, outputs, _ = extractor._dispatch(step, images)
            jax.block_until_ready(outputs)

    return run


def bench_torch(full, half, dtype):
    import torch
    from reiqa_jax.reference.torch_model import ReIQANet

    device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    model = ReIQANet().to(device).eval()
    cast = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    full_t = torch.from_numpy(full).to(device)
    half_t = torch.from_numpy(half).to(device)

    def prep(x):  # uint8 NHWC -> [0,1] NCHW, as the demo's ToTensor
        return (x.permute(0, 3, 1, 2).to(torch.float32) / 255.0).contiguous()

    def run():
        with torch.inference_mode(), torch.autocast(device, dtype=cast, enabled=dtype != "float32"):
            out = torch.cat([model.encoder(prep(full_t)), model.encoder(prep(half_t))], dim=1)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return run, device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--write-results", action="store_true",
                        help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)

    compute = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[args.dtype]
    model = ReIQAModel(depth=50, dtype=compute, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    device = jax.devices()[0]
    rows = []
    for height, width in SIZES:
        full = rng.integers(0, 256, (args.batch_size, height, width, 3), dtype=np.uint8)
        half = rng.integers(0, 256, (args.batch_size, height // 2, width // 2, 3), dtype=np.uint8)
        jax_s = best_time(bench_jax(model, full, half, args.dtype), args.repeats)
        jax_ips = args.batch_size / jax_s
        torch_ips, torch_device = float("nan"), "-"
        if not args.no_torch:
            run, torch_device = bench_torch(full, half, args.dtype)
            torch_ips = args.batch_size / best_time(run, args.repeats)
        rows.append((f"{width}x{height}", jax_ips, torch_ips, torch_device))
        print(f"{width}x{height}: jax {jax_ips:8.2f} img/s  torch {torch_ips:8.2f} img/s  "
              f"ratio {jax_ips / torch_ips:5.2f}", flush=True)

    today = datetime.date.today().isoformat()
    where = f"{device.platform}: {getattr(device, 'device_kind', '')}; CPU {cpu_name()}"
    table = [
        f"### Extraction, {today}, {where}",
        "",
        f"`python benchmarks/extract.py --batch-size {args.batch_size} --dtype {args.dtype}` "
        f"(jax {jax.__version__}; one encoder, full + half scale, best of {args.repeats})",
        "",
        "| image | reiqa-jax img/s | PyTorch img/s | ratio |",
        "|---|---:|---:|---:|",
    ]
    table += [f"| {size} | {j:.2f} | {t:.2f} ({dev}) | {j / t:.2f} |" for size, j, t, dev in rows]
    text = "\n".join(table) + "\n"
    print(text)
    if args.write_results:
        results = Path(__file__).with_name("RESULTS.md")
        with results.open("a") as handle:
            handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
