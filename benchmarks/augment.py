"""Distortion throughput at 512x384: reiqa-jax ops vs the numpy/PIL references.

Measures distorted images per second, per op (level cycling 0..4) and for the
training mix (kinds uniform over 1..26, levels uniform over 0..4), for this
project (jitted, batched, all cores XLA gives it) and for the CPU references
in ``reiqa_jax/reference/`` (``ref_<name>(rng, image_u8, level)``, one image
at a time, as the official data loader calls them), on the same machine in one
run. Also the full official training sample (``make_quality_views``, recipe
160/11/2) against the references plus torch interpolate and numpy crops.

Usage:
  .venv/bin/python benchmarks/augment.py [--quick] [--no-write]
Prints a Markdown table and (unless --no-write) replaces the augmentation
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from skimage import data
from skimage.transform import resize

from common import cpu_name, write_block  # (benchmarks/common.py)
from reiqa_jax import augment

H, W = 384, 512
BEGIN, END = "<!-- augment:begin -->", "<!-- augment:end -->"


def photos(n: int) -> np.ndarray:
    """n real photos as uint8 (n, 384, 512, 3)."""
    src = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    out = [(resize(src[i % 4], (H, W), anti_aliasing=True) * 255).round().astype(np.uint8)
           for i in range(n)]
    return np.stack(out)


def ref_ops():
    from reiqa_jax.reference import official_ops

    return official_ops()


def timed(fn, reps: int) -> float:
    """Median wall seconds of fn() over reps calls (after one warm-up call
    done by the caller)."""
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_ours_op(op, imgs, levels, reps):
    f = jax.jit(jax.vmap(op))
    keys = jax.random.split(jax.random.key(0), imgs.shape[0])
    t0 = time.perf_counter()
    f(keys, imgs, levels).block_until_ready()
    compile_s = time.perf_counter() - t0
    s = timed(lambda: f(keys, imgs, levels).block_until_ready(), reps)
    return imgs.shape[0] / s, compile_s


def bench_ref(pairs, u8, reps):
    """pairs: list of (ref_fn, image index, level)."""
    rng = np.random.default_rng(0)

    def run():
        for fn, i, lv in pairs:
            fn(rng, u8[i], int(lv))
    run()
    return len(pairs) / timed(run, reps)


def reference_sample(rng, refs, image_u8, n_aug=11, p=160):
    """The official training sample with the CPU references: 11 distortions,
    torch half-size bicubic, numpy crop pairs (random-crop path at scale 1,
    CenterCrop padding at scale 2, as the official code does at 512x384)."""
    import torch
    kinds = rng.permutation(26)[:n_aug]
    stack = [image_u8] + [refs[augment.NAMES[k]](rng, image_u8, int(rng.integers(0, 5)))
                          for k in kinds]
    t = torch.from_numpy(np.stack(stack).astype(np.float32) / 255).permute(0, 3, 1, 2)
    half = torch.nn.functional.interpolate(t, size=(H // 2, W // 2), mode="bicubic",
                                           align_corners=True)
    out = []
    for chunk in (t, half):
        y = int(rng.integers(112, 144))
        x = int(rng.integers(0, max(1, int((0.9 * p * p - p * y) / (p - y)))))
        s = p + max(y, x)
        hh, ww = chunk.shape[2:]
        if hh >= s and ww >= s:
            top, left = int(rng.integers(0, hh - s + 1)), int(rng.integers(0, ww - s + 1))
            reg = chunk[:, :, top:top + s, left:left + s]
        else:
            pad = torch.nn.functional.pad(chunk, (s, s, s, s))
            top, left = s - (s - hh) // 2, s - (s - ww) // 2
            reg = pad[:, :, top:top + s, left:left + s]
        out.append(torch.cat([reg[:, :, :p, :p], reg[:, :, y:y + p, x:x + p]], 1))
    return torch.cat(out, 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small batches, one repetition")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = ap.parse_args(argv)
    batch, reps, mix_n = (4, 1, 26) if args.quick else (8, 3, 52)

    u8 = photos(max(batch, mix_n))
    f32 = jnp.asarray(u8.astype(np.float32) / 255)
    refs = ref_ops()
    rows = []
    levels = jnp.arange(batch, dtype=jnp.int32) % 5
    for d in augment.DISTORTIONS:
        ours, comp = bench_ours_op(d.fn, f32[:batch], levels, reps)
        ref = bench_ref([(refs[d.name], i, int(levels[i])) for i in range(batch)], u8, reps) \
            if d.name in refs else float("nan")
        rows.append((f"{d.number} {d.name}", ours, ref, comp))
        print(f"{d.number:2d} {d.name:22s} ours {ours:8.1f}/s  ref {ref:8.1f}/s  "
              f"x{ours / ref:5.1f}  (compile {comp:.1f}s)", flush=True)

    # Training mix: uniform kinds and levels.
    rng = np.random.default_rng(1)
    kinds = rng.integers(1, 27, mix_n).astype(np.int32)
    lv = rng.integers(0, 5, mix_n).astype(np.int32)
    f = jax.jit(augment.distort_batch)
    t0 = time.perf_counter()
    f(jax.random.key(0), f32[:mix_n], kinds, lv).block_until_ready()
    comp_scan = time.perf_counter() - t0
    ours_scan = mix_n / timed(lambda: f(jax.random.key(0), f32[:mix_n], kinds, lv)
                              .block_until_ready(), reps)
    ref_mix = bench_ref([(refs[augment.NAMES[k - 1]], i, l)
                         for i, (k, l) in enumerate(zip(kinds, lv))], u8, reps)
    rows.append(("mix, distort_batch (scan)", ours_scan, ref_mix, comp_scan))
    print(f"mix scan     ours {ours_scan:.1f}/s ref {ref_mix:.1f}/s", flush=True)

    n_aug = 13
    nb = mix_n // n_aug
    perm = (rng.permutation(26) + 1).astype(np.int32)
    lvb = rng.integers(0, 5, (nb, n_aug)).astype(np.int32)
    g = jax.jit(augment.distort_balanced)
    t0 = time.perf_counter()
    g(jax.random.key(0), f32[:nb], perm, lvb).block_until_ready()
    comp_bal = time.perf_counter() - t0
    ours_bal = nb * n_aug / timed(lambda: g(jax.random.key(0), f32[:nb], perm, lvb)
                                  .block_until_ready(), reps)
    rows.append((f"mix, distort_balanced ({nb} images x {n_aug})", ours_bal, ref_mix, comp_bal))
    print(f"mix balanced ours {ours_bal:.1f}/s", flush=True)

    # Full official training sample (pristine + 11, two scales, crops).
    vb = 2
    cfg = augment.QualityViewConfig()
    mq = lambda: augment.make_quality_views(jax.random.key(0), u8[:vb], cfg)[0].block_until_ready()
    t0 = time.perf_counter()
    mq()
    comp_views = time.perf_counter() - t0
    ours_views = vb / timed(mq, reps)
    srng = np.random.default_rng(2)
    reference_sample(srng, refs, u8[0])
    ref_views = vb / timed(lambda: [reference_sample(srng, refs, u8[i]) for i in range(vb)], reps)
    rows.append(("training sample (pristine + 11, 2 scales, crops)", ours_views, ref_views,
                 comp_views))
    print(f"views ours {ours_views:.2f}/s ref {ref_views:.2f}/s", flush=True)

    table = render(rows, args, batch, reps, mix_n)
    print(table)
    if not args.no_write:
        write_block(BEGIN, END, table)


def render(rows, args, batch, reps, mix_n) -> str:
    dev = jax.devices()[0]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = [
        "## Augmentation throughput (`benchmarks/augment.py`)",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"command: `.venv/bin/python benchmarks/augment.py{' --quick' if args.quick else ''}`",
        f"- Device: jax {jax.__version__} on `{dev.platform}` ({dev.device_kind}), "
        f"{os.cpu_count()} CPU threads; CPU: {cpu_name()}; load average at the end: {load:.1f}",
        f"- Images 384x512 (H x W) real photos; per op: batch {batch}, levels cycling 0..4; "
        f"mix: {mix_n} images, kinds uniform 1..26, levels uniform 0..4; median of {reps} "
        "run(s), compile excluded (listed separately). Reference = `reiqa_jax/reference/` "
        "(numpy/PIL/scipy, one image at a time, single process).",
        "- Images/s: higher is better; ratio = ours / reference. Ours uses XLA's "
        "intra-op threads (both cores); the references run single-threaded as each "
        "official loader worker does. Taken on a 2-core VM shared with other engineers' "
        "jobs (load average above): expect +-30% run to run.",
        "- Rows: per op = `jit(vmap(op))`; mix = `distort_batch` (scan + scalar switch, "
        "any kinds) and `distort_balanced` (one permutation per batch, grouped vmap); "
        "training sample = `make_quality_views` (official recipe) vs references + torch "
        "`interpolate` + numpy crops.",
        "",
        "| distortion | ours (img/s) | reference (img/s) | ratio | compile (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    body = [f"| {name} | {o:.1f} | {r:.1f} | {o / r:.1f}x | {c:.1f} |" for name, o, r, c in rows]
    return "\n".join(head + body) + "\n"


if __name__ == "__main__":
    main()
