"""Training-step throughput: the whole jitted step (augmentation included), its
augmentation share, and the same MoCo step in PyTorch, side by side in one run.

For each device count, in a fresh process (JAX fixes its device count at start):

* ``full``: ``train.make_train_step`` on uint8 384x512 tiles of real photos:
  the 26 distortions, crops, scale 2, key forward with shuffle BN, query
  forward and backward, LARS, EMA, queue push — pairs/s;
* ``views``: the augmentation alone (``train.make_view_fn`` under the same
  shard_map) — its time over the full step's is the augmentation share;
* ``model``: the step on ready crops (no augmentation) — pairs/s;
* ``split``: the same crops given as one 6-channel array that the step
  splits into queries and keys, as it splits the augmentation's output;
* ``torch`` (one device only): the official step restated in PyTorch
  (``reiqa_jax/reference/moco_torch.py``: shuffle BN, query forward/backward,
  LARS, EMA, queue) on the same ready crops, on CUDA when there is one.

    .venv/bin/python benchmarks/train_step.py                       # CPU default below
    .venv/bin/python benchmarks/train_step.py --images 13 --dtype bfloat16 --devices 1
    .venv/bin/python benchmarks/train_step.py --write-results       # add to RESULTS.md

Whole pictures vs windows (``--pictures``): the official training list's
sizes (KADIS-700k's 140,000 pictures of 512 x 384 and a COCO-like list of
287,000, ``data.canvases.coco_like_sizes``; AVA, VOC and CERTH-blur are left
out: their size lists are not public here) in the canvas classes the
trainer makes for the official batch of 630; per class, the augmentation of
``--images`` pictures of that class's sizes (real photos resized to them)
vs the same pictures as today's 384 x 512 windows (``tiles.sample_tile``);
plus the step on ready crops once (the model does not see the canvas). The
whole step per class is model + augmentation (``--full`` times the whole
step per class instead: for accelerators, where it is quick). Pairs/s of
the mix weights each class by its share of the epoch's steps.

Memory (``--memory``): the official per-device batch (13 pictures x 24
pairs of 160 px, ResNet-50) at the mix's largest canvas and at
``canvas.max_side`` squared, compiled (not run) for the default backend:
``compiled.memory_analysis()``.

    .venv/bin/python benchmarks/train_step.py --pictures --write-results
    .venv/bin/python benchmarks/train_step.py --memory --write-results

Default (CPU): ResNet-50, 1 image per device x 24 pairs (11 distorted + pristine,
2 scales) of 160 x 160, queue 65,536 — the official per-device shape is 13
images; on a 2-core CPU one such step takes minutes. A pair = one query and
one key crop.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import (best_time, best_times_interleaved, cpu_name, pythonpath_with,  # noqa: E402
                    write_block)


def _config(args, devices: int):
    from reiqa_jax.config_file import load_config

    c = load_config("reiqa_quality_r50")
    c.model.depth = args.depth
    c.batch_size = args.images * devices
    c.dtype = args.dtype
    c.views.n_aug = args.n_aug
    c.views.patch_size = args.patch
    return c


def _tiles(n: int):
    import numpy as np

    from reiqa_jax.data.sample_photos import COLOR, load_sample_photo
    from reiqa_jax.data.tiles import sample_tile, stack_tiles

    rng = np.random.default_rng(0)
    tiles = [sample_tile(rng, load_sample_photo(COLOR[i % 4])) for i in range(n)]
    batch = stack_tiles(tiles)
    batch["skipped"] = np.zeros((n,), np.int32)
    return batch


def worker(args) -> dict:
    """Runs in a process with ``args.devices_now`` devices; returns the timings."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P

    from reiqa_jax import optim, train

    devices = len(jax.devices())
    config = _config(args, devices)
    mesh = train.make_mesh()
    sharding = NamedSharding(mesh, P(train.DATA_AXES))
    tx = optim.make_optimizer(config)
    view_fn = train.make_view_fn(config)
    batch = {k: jax.device_put(v, sharding) for k, v in _tiles(config.batch_size).items()}
    pairs = config.batch_size * train.pairs_per_image(config)

    state = train.create_train_state(config, mesh, tx)
    step = train.make_train_step(config, mesh, tx, view_fn)
    holder = {"state": state}

    def full():
        holder["state"], m = step(holder["state"], batch, np.float32(1.0))
        jax.block_until_ready(m["loss"])

    def views_only(batch):
        def per_device(b):
            index = jax.lax.axis_index(train.DATA_AXES)
            q, k = view_fn(jax.random.fold_in(jax.random.key(0), index), b)
            return q, k
        spec = jax.tree.map(lambda _: P(train.DATA_AXES), batch)
        return jax.shard_map(per_device, mesh=mesh, in_specs=(spec,),
                             out_specs=(P(train.DATA_AXES), P(train.DATA_AXES)))(batch)

    views = jax.jit(views_only)
    crops = views(batch)
    ready = {"x1": crops[0], "x2": crops[1]}
    model_step = train.make_train_step(config, mesh, tx, None)

    def model():
        holder["state"], m = model_step(holder["state"], ready, np.float32(1.0))
        jax.block_until_ready(m["loss"])

    # The ready crops as one 6-channel array split inside the step, as the
    # full step splits the augmentation's output: isolates that split's cost.
    six = {"v": jnp.concatenate(crops, axis=-1)}
    split_step = train.make_train_step(config, mesh, tx,
                                       lambda key, b: (b["v"][..., :3], b["v"][..., 3:]))

    def split():
        holder["state"], m = split_step(holder["state"], six, np.float32(1.0))
        jax.block_until_ready(m["loss"])

    # Interleaved rounds: the figures see the same machine load.
    times = best_times_interleaved(
        {"full": full, "views": lambda: jax.block_until_ready(views(batch)), "model": model,
         "split": split}, args.repeats)
    t_full, t_views, t_model = times["full"], times["views"], times["model"]
    out = {"devices": devices, "pairs": pairs, "full_s": t_full, "views_s": t_views,
           "model_s": t_model, "split_s": times["split"], "backend": jax.default_backend(),
           "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__}
    if devices == 1 and not args.no_torch:
        out.update(torch_step(args, np.asarray(crops[0]), np.asarray(crops[1])))
    return out


def torch_step(args, x1, x2) -> dict:
    """The official step in PyTorch on the same crops (data already on the device)."""
    import numpy as np
    import torch

    from reiqa_jax.reference.moco_torch import official_step
    from reiqa_jax.reference.torch_model import ReIQANet

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ReIQANet(args.depth, 1, 128).to(device)
    ema = ReIQANet(args.depth, 1, 128).to(device)
    ema.load_state_dict(model.state_dict())
    queue = torch.nn.functional.normalize(torch.randn(65536, 128), dim=1).to(device)
    mus = [torch.zeros_like(p) for p in model.parameters()]
    q = torch.from_numpy(np.ascontiguousarray(x1.transpose(0, 3, 1, 2))).to(device)
    k = torch.from_numpy(np.ascontiguousarray(x2.transpose(0, 3, 1, 2))).to(device)
    perm = torch.randperm(k.shape[0]).to(device)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if args.dtype == "bfloat16" \
        else torch.autocast(device, enabled=False)

    def run():
        with autocast:
            official_step(model, ema, queue, 0, [q], [k], perm, mus, lr=1.0)
        if device == "cuda":
            torch.cuda.synchronize()

    return {"torch_s": best_time(run, args.repeats), "torch_device": device,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def _gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        return len([l for l in out.stdout.splitlines() if l.startswith("GPU")])
    except (OSError, subprocess.SubprocessError):
        return 0


# --- whole pictures vs windows --------------------------------------------------

KEYS = 4  # steps' draws per timed call
PICTURES_BLOCK = ("<!-- train-step:pictures:begin -->", "<!-- train-step:pictures:end -->")
MEMORY_BLOCK = ("<!-- train-step:memory:begin -->", "<!-- train-step:memory:end -->")


def official_mix():
    """(sizes, canvases, class_of, step share per class) of the official list
    (as far as its sizes are known, see the module docstring)."""
    import numpy as np

    from reiqa_jax.data import canvases
    from reiqa_jax.data.pipeline import quality_classes

    sizes = [(384, 512)] * 140_000 + canvases.coco_like_sizes(287_000, seed=0)
    from reiqa_jax.config_file import load_config
    c = load_config("reiqa_quality_r50").canvas
    classes = quality_classes(sizes, step=c.step, max_side=c.max_side, min_count=630,
                              max_classes=c.max_classes)
    counts = np.asarray(classes.counts())
    steps = -(-counts // 630)
    return sizes, classes, steps / steps.sum()


def _resized_photos(sizes):
    """Real photos resized (PIL bicubic) to the given (h, w) sizes, uint8."""
    import numpy as np
    from PIL import Image

    from reiqa_jax.data.sample_photos import COLOR, load_sample_photo

    return [np.asarray(Image.fromarray(load_sample_photo(COLOR[i % 5])).resize((w, h)))
            for i, (h, w) in enumerate(sizes)]


def _canvas_batch(pictures, canvas):
    import numpy as np

    from reiqa_jax.data.tiles import picture_canvas

    rng = np.random.default_rng(0)
    items = [picture_canvas(rng, p, canvas) for p in pictures]
    batch = {"pixels": np.stack([i["pixels"] for i in items]),
             "skipped": np.zeros((len(items),), np.int32)}
    if any(tuple(i["valid_hw"]) != tuple(canvas) for i in items):
        batch["valid_hw"] = np.stack([i["valid_hw"] for i in items])
    return batch


def pictures_worker(args) -> dict:
    """Augmentation (and, with --full, whole-step) time per canvas class of the
    official mix vs windows, on one device."""
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P

    from reiqa_jax import optim, train
    from reiqa_jax.data.tiles import sample_tile, stack_tiles

    sizes, classes, share = official_mix()
    config = _config(args, 1)
    mesh = train.make_mesh()
    sharding = NamedSharding(mesh, P(train.DATA_AXES))
    view_fn = train.make_view_fn(config)
    tx = optim.make_optimizer(config)
    pairs = config.batch_size * train.pairs_per_image(config)

    def views_only(batch, key):
        def per_device(b, k):
            return view_fn(k, b)
        spec = jax.tree.map(lambda _: P(train.DATA_AXES), batch)
        return jax.shard_map(per_device, mesh=mesh, in_specs=(spec, P()),
                             out_specs=(P(train.DATA_AXES), P(train.DATA_AXES)))(batch, key)

    views = jax.jit(views_only)
    state = {"s": train.create_train_state(config, mesh, tx)}
    step = train.make_train_step(config, mesh, tx, view_fn)
    rng = np.random.default_rng(1)
    class_of = np.asarray(classes.class_of)
    runs, rows = {}, []
    batches = {}
    for k, canvas in enumerate(classes.canvases):
        members = np.nonzero(class_of == k)[0]
        picks = [sizes[i] for i in rng.choice(members, config.batch_size)]
        pictures = _resized_photos(picks)
        put = lambda b: {n: jax.device_put(v, sharding) for n, v in b.items()}
        whole = put(_canvas_batch(pictures, canvas))
        tiles = stack_tiles([sample_tile(rng, p) for p in pictures])
        if (tiles["valid_hw"] == np.array([384, 512])).all() and not tiles["transposed"].any():
            del tiles["valid_hw"], tiles["transposed"]  # full tiles: static sizes, as before
        window = put(dict(tiles, skipped=np.zeros((len(pictures),), np.int32)))
        batches[k] = (whole, window)
        rows.append({"canvas": canvas, "share": float(share[k]), "sizes": picks})

    # Each timed call runs KEYS steps' draws (distortion kinds differ a lot
    # in cost; the same keys for every canvas); the figures are per step.
    keys = [jax.random.key(i) for i in range(KEYS)]

    def run_views(b):
        return lambda: [jax.block_until_ready(views(b, k)) for k in keys]

    def run_full(b):
        def go():
            for _ in keys:
                state["s"], m = step(state["s"], b, np.float32(1.0))
                jax.block_until_ready(m["loss"])
        return go

    run = run_full if args.full else run_views
    for k, (whole, window) in batches.items():
        runs[f"whole{k}"] = run(whole)
    runs["window"] = run(batches[0][1])  # the windows' shape is one for every class
    ready = None
    if not args.full:
        crops = views(batches[0][1], keys[0])
        ready = {"x1": crops[0], "x2": crops[1]}
        model_step = train.make_train_step(config, mesh, tx, None)

        def model():
            for _ in keys:
                state["s"], m = model_step(state["s"], ready, np.float32(1.0))
                jax.block_until_ready(m["loss"])
        runs["model"] = model
    times = {k: t / KEYS for k, t in best_times_interleaved(runs, args.repeats).items()}
    for k, r in enumerate(rows):
        r["whole_s"] = times[f"whole{k}"]
    return {"rows": rows, "window_s": times["window"], "model_s": times.get("model", 0.0),
            "pairs": pairs, "full": bool(args.full), "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__,
            "classes": len(classes.canvases)}


def memory_worker(args) -> dict:
    """memory_analysis() of the compiled step (not run) at two canvases."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P

    from reiqa_jax import optim, train

    _, classes, _ = official_mix()
    config = _config(args, 1)
    mesh = train.make_mesh()
    sharding = NamedSharding(mesh, P(train.DATA_AXES))
    tx = optim.make_optimizer(config)
    abstract = train.abstract_state(config, tx, 1, mesh)
    step = train.make_train_step(config, mesh, tx, train.make_view_fn(config))
    largest = max(classes.canvases, key=lambda c: c[0] * c[1])
    side = config.canvas.max_side
    out = []
    for canvas in (largest, (side, side)):
        b = config.batch_size
        batch = {"pixels": jax.ShapeDtypeStruct((b, *canvas, 3), jnp.uint8, sharding=sharding),
                 "valid_hw": jax.ShapeDtypeStruct((b, 2), jnp.int32, sharding=sharding),
                 "skipped": jax.ShapeDtypeStruct((b,), jnp.int32, sharding=sharding)}
        compiled = step.lower(abstract, batch, np.float32(1.0)).compile()
        m = compiled.memory_analysis()
        out.append({"canvas": canvas, "temp": m.temp_size_in_bytes,
                    "arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes,
                    "aliased": m.alias_size_in_bytes})
    return {"rows": out, "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__,
            "images": config.batch_size, "dtype": args.dtype}


def _run_worker(args, extra) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath_with(ROOT / "tests"), JAX_NUM_CPU_DEVICES="1")
    if _gpu_count() >= 1:
        env["CUDA_VISIBLE_DEVICES"] = "0"
    cmd = [sys.executable, __file__, "--worker", "--images", str(args.images), "--n-aug",
           str(args.n_aug), "--patch", str(args.patch), "--depth", str(args.depth),
           "--dtype", args.dtype, "--repeats", str(args.repeats), *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    if r.returncode or not line:
        print(r.stderr[-3000:], file=sys.stderr)
        raise SystemExit(1)
    return json.loads(line[0][len("RESULT "):])


def _where(r) -> str:
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{date}, {r['backend']} ({r['device_kind']}); CPU {cpu_name()}, "
            f"{os.cpu_count()} cores, jax {r['jax']}")


def pictures_table(args, r) -> str:
    share = [row["share"] for row in r["rows"]]
    whole = [row["whole_s"] for row in r["rows"]]
    model = r["model_s"]
    mean_whole = sum(s * t for s, t in zip(share, whole))
    what = "whole step" if r["full"] else "augmentation"
    lines = [
        f"### Whole pictures vs 384 x 512 windows, {_where(r)}",
        "",
        f"`python benchmarks/train_step.py --pictures --images {args.images} --depth "
        f"{args.depth} --dtype {args.dtype}{' --full' if r['full'] else ''}` "
        f"(ResNet-{args.depth}, {args.images} picture(s) x {2 * (args.n_aug + 1)} pairs of "
        f"{args.patch} px; the official list's sizes: 140,000 x 512x384 (KADIS-700k) + "
        f"287,000 COCO-like, in the trainer's {r['classes']} canvases for a batch of 630; "
        f"{what} per canvas, mean over {KEYS} steps' draws, best of {args.repeats}). "
        "Machine shared with other jobs.",
        "",
        f"| canvas | share of steps | {what} s, whole pictures | {what} s, windows |",
        "|---|---:|---:|---:|",
    ]
    for row in r["rows"]:
        h, w = row["canvas"]
        lines.append(f"| {h}x{w} | {100 * row['share']:.1f}% | {row['whole_s']:.2f} | "
                     f"{r['window_s']:.2f} |")
    step_whole = mean_whole + model
    step_window = r["window_s"] + model
    lines += ["", f"Mix: {what} {mean_whole:.2f} s (whole) vs {r['window_s']:.2f} s (windows)"
              + ("" if r["full"] else f"; step on ready crops {model:.2f} s") + "; "
              + f"pairs/s {r['pairs'] / step_whole:.1f} (whole) vs {r['pairs'] / step_window:.1f} "
              f"(windows): {step_whole / step_window:.2f}x the step time."]
    return "\n".join(lines)


def memory_table(args, r) -> str:
    gib = 1024 ** 3
    lines = [
        f"### Device memory of one step (compiled, not run), {_where(r)}",
        "",
        f"`python benchmarks/train_step.py --memory --images {args.images} --depth {args.depth} "
        f"--dtype {args.dtype}` (ResNet-{args.depth}, {r['images']} pictures x "
        f"{2 * (args.n_aug + 1)} pairs of {args.patch} px per device, queue 65,536; "
        "`compiled.memory_analysis()`)",
        "",
        "| canvas | temporaries GiB | arguments GiB | outputs GiB | aliased GiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        h, w = row["canvas"]
        lines.append(f"| {h}x{w} | {row['temp'] / gib:.2f} | {row['arguments'] / gib:.2f} | "
                     f"{row['outputs'] / gib:.2f} | {row['aliased'] / gib:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", default="1,2,4",
                   help="device counts to measure (CPU: virtual devices); default 1,2,4")
    p.add_argument("--images", type=int, default=1, help="images per device (official: 13)")
    p.add_argument("--n-aug", type=int, default=11, help="distorted versions per image")
    p.add_argument("--patch", type=int, default=160, help="crop side")
    p.add_argument("--depth", type=int, default=50, help="ResNet depth")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--repeats", type=int, default=3, help="timed steps (best of)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch step")
    p.add_argument("--write-results", action="store_true",
                   help="add the table to benchmarks/RESULTS.md")
    p.add_argument("--pictures", action="store_true",
                   help="whole pictures vs windows over the official sizes mix (one device)")
    p.add_argument("--full", action="store_true",
                   help="with --pictures: time the whole step per canvas (accelerators)")
    p.add_argument("--memory", action="store_true",
                   help="device memory of the compiled step (not run); default --images 13")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        fn = pictures_worker if args.pictures else memory_worker if args.memory else worker
        print("RESULT " + json.dumps(fn(args)), flush=True)
        return 0
    if args.pictures or args.memory:
        if args.memory and args.images == 1:
            args.images = 13  # the official per-device batch (630 over 48 GPUs)
        flags = ["--pictures"] + (["--full"] if args.full else []) if args.pictures \
            else ["--memory"]
        r = _run_worker(args, flags)
        text = pictures_table(args, r) if args.pictures else memory_table(args, r)
        print(text)
        if args.write_results:
            write_block(*(PICTURES_BLOCK if args.pictures else MEMORY_BLOCK), text)
        return 0

    rows = []
    for count in [int(c) for c in args.devices.split(",")]:
        # CPU: that many virtual devices; GPUs: the first `count` visible ones.
        env = dict(os.environ, PYTHONPATH=pythonpath_with(ROOT / "tests"),
                   JAX_NUM_CPU_DEVICES=str(count))
        if _gpu_count() >= count:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(count))
        cmd = [sys.executable, __file__, "--worker", "--images", str(args.images),
               "--n-aug", str(args.n_aug), "--patch", str(args.patch), "--depth",
               str(args.depth), "--dtype", args.dtype, "--repeats", str(args.repeats)]
        if args.no_torch or count > 1:
            cmd.append("--no-torch")
        print(f"measuring {count} device(s) ...", file=sys.stderr, flush=True)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
        if r.returncode or not line:
            print(r.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append(json.loads(line[0][len("RESULT "):]))

    first = rows[0]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = (f"{first['backend']} ({first['device_kind']}); CPU {cpu_name()}, "
             f"{os.cpu_count()} cores")
    lines = [
        f"### Training step, {date}, {where}",
        "",
        f"`python benchmarks/train_step.py --devices {args.devices} --images {args.images} "
        f"--n-aug {args.n_aug} --patch {args.patch} --depth {args.depth} --dtype {args.dtype}` "
        f"(jax {first['jax']}; ResNet-{args.depth}, {args.images} image(s) x "
        f"{2 * (args.n_aug + 1)} pairs of {args.patch}x{args.patch} per device, queue 65,536, "
        f"best of {args.repeats})",
        "",
        "| devices | pairs/step | full step pairs/s | augmentation share | step on ready crops "
        "pairs/s | PyTorch step pairs/s | full / PyTorch | ready crops / PyTorch |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        torch_cells = ["-", "-", "-"]
        if "torch_s" in r:
            tps = r["pairs"] / r["torch_s"]
            torch_cells = [f"{tps:.1f} ({r['torch_device']}, {r['torch_threads']} threads)",
                           f"{r['torch_s'] / r['full_s']:.2f}",
                           f"{r['torch_s'] / r['model_s']:.2f}"]
        lines.append(f"| {r['devices']} | {r['pairs']} | {r['pairs'] / r['full_s']:.1f} | "
                     f"{100 * r['views_s'] / r['full_s']:.0f}% | "
                     f"{r['pairs'] / r['model_s']:.1f} | " + " | ".join(torch_cells) + " |")
    lines += ["", "Seconds per step (best of interleaved rounds):", "",
              "| devices | full step | augmentation alone | step on ready crops | ready crops "
              "as 6-channel views, split in the step |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['devices']} | {r['full_s']:.2f} | {r['views_s']:.2f} | "
                     f"{r['model_s']:.2f} | {r['split_s']:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        results = Path(__file__).with_name("RESULTS.md")
        results.write_text(results.read_text().rstrip() + "\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
