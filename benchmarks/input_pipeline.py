"""The trainer's host pipeline per CPU core, and what it moves to the device.

For KADIS-like 512 x 384 JPEGs and COCO-like 640 x 480 JPEGs (real photos
resized, saved by Pillow at quality 90, as the datasets' own JPEGs are
large-quality photos), in one process and one thread (= one core):

* ``slot``: everything the trainer's host does per picture
  (``data.pipeline.LoadSlot``: decode with Pillow, RGB, checks, the picture
  into its canvas) -> pictures/s;
* ``decode``: Pillow's decode + RGB alone; ``canvas``: the copy into the
  canvas alone;
* ``simplejpeg`` (when installed): libjpeg-turbo through simplejpeg (exact
  DCT, fancy upsampling: Pillow's settings), and whether its pixels equal
  Pillow's.

Goal: one core >= 100 pictures/s, so that a 96-core host feeds 8
accelerators at 250 pictures/s each (the 6,000 pairs/s per accelerator the
train step aims for). Bytes to the device per step: the canvases of the
official per-device batch (13 pictures) over the official sizes mix
(``train_step.official_mix``), uint8 pixels + int32 sizes.

    .venv/bin/python benchmarks/input_pipeline.py [--write-results]
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import cpu_name, write_block  # noqa: E402

BLOCK = ("<!-- input-pipeline:begin -->", "<!-- input-pipeline:end -->")
SETS = {"KADIS-like 512x384": (384, 512), "COCO-like 640x480": (480, 640)}


def _write_jpegs(folder: Path, hw, n: int) -> list[str]:
    import numpy as np
    from PIL import Image

    from reiqa_jax.data.sample_photos import COLOR, load_sample_photo

    paths = []
    for i in range(n):
        photo = load_sample_photo(COLOR[i % len(COLOR)])
        # a different crop of each photo, then the set's size
        h, w = photo.shape[:2]
        top, left = (7 * i) % max(1, h // 4), (11 * i) % max(1, w // 4)
        crop = photo[top:top + 3 * h // 4, left:left + 3 * w // 4]
        path = folder / f"p{i:03d}.jpg"
        Image.fromarray(np.ascontiguousarray(crop)).resize((hw[1], hw[0]), Image.BICUBIC).save(
            path, quality=90)
        paths.append(str(path))
    return paths


def _rate(fn, items, seconds: float) -> float:
    """Items per second of ``fn`` over ``items``, cycling for ``seconds``."""
    fn(items[0])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(items[done % len(items)])
        done += 1
    return done / (time.perf_counter() - start)


def measure(paths, hw, seconds: float) -> dict:
    import numpy as np
    from PIL import Image

    from reiqa_jax.data import pipeline, tiles

    classes = pipeline.quality_classes(pipeline.read_sizes(paths, 1), step=32, max_side=1024,
                                       min_count=1)
    spec = pipeline.InputSpec(paths=tuple(paths), seed=0, global_batch=len(paths),
                              local_batch=len(paths), process_offset=0,
                              canvases=classes.canvases, class_of=classes.class_of,
                              exact=classes.exact)
    load = pipeline.LoadSlot(spec)
    out = {"slot": _rate(load, list(range(len(paths))), seconds)}

    def decode(path):
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))

    out["decode"] = _rate(decode, paths, seconds)
    pictures = [decode(p) for p in paths]
    canvas = classes.canvases[0]
    rng = np.random.default_rng(0)
    out["canvas"] = _rate(lambda p: tiles.picture_canvas(rng, p, canvas), pictures, seconds)
    try:
        import simplejpeg
    except ImportError:
        return out
    data = [Path(p).read_bytes() for p in paths]
    out["simplejpeg"] = _rate(lambda b: simplejpeg.decode_jpeg(
        b, colorspace="RGB", fastdct=False, fastupsample=False), data, seconds)
    out["simplejpeg_equal"] = all(np.array_equal(
        simplejpeg.decode_jpeg(b, colorspace="RGB", fastdct=False, fastupsample=False), p)
        for b, p in zip(data, pictures))
    out["simplejpeg_version"] = simplejpeg.__version__
    return out


def bytes_per_step(images: int = 13) -> tuple[float, float]:
    """Mean and largest bytes to one device per step over the official mix."""
    from train_step import official_mix

    _, classes, share = official_mix()
    per_class = [images * (h * w * 3 + 2 * 4 * (not exact) + 4)
                 for (h, w), exact in zip(classes.canvases, classes.exact)]
    return float(sum(s * b for s, b in zip(share, per_class))), float(max(per_class))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pictures", type=int, default=48, help="JPEGs per set")
    p.add_argument("--seconds", type=float, default=5.0, help="timing per measurement")
    p.add_argument("--write-results", action="store_true")
    args = p.parse_args(argv)
    import PIL

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, hw in SETS.items():
            folder = Path(tmp) / name.split()[0]
            folder.mkdir()
            rows[name] = measure(_write_jpegs(folder, hw, args.pictures), hw, args.seconds)
            print(name, rows[name], file=sys.stderr, flush=True)
    mean_b, max_b = bytes_per_step()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    has_sj = all("simplejpeg" in r for r in rows.values())
    lines = [
        f"### Host input pipeline per CPU core, {date}, CPU {cpu_name()}, {os.cpu_count()} cores "
        "(machine shared with other jobs)",
        "",
        f"`python benchmarks/input_pipeline.py` (one process, one thread; {args.pictures} JPEGs "
        f"per set, quality 90; Pillow {PIL.__version__})",
        "",
        "| pictures | trainer's host work per picture (pictures/s) | Pillow decode alone | "
        "into the canvas alone |" + (" simplejpeg decode | same pixels as Pillow |" if has_sj
                                     else ""),
        "|---|---:|---:|---:|" + ("---:|---|" if has_sj else ""),
    ]
    for name, r in rows.items():
        line = f"| {name} | {r['slot']:.0f} | {r['decode']:.0f} | {r['canvas']:.0f} |"
        if has_sj:
            line += f" {r['simplejpeg']:.0f} | {'yes' if r['simplejpeg_equal'] else 'no'} |"
        lines.append(line)
    lines += ["", f"Bytes to each device per step (13 pictures in their canvases, official "
              f"sizes mix): {mean_b / 2**20:.1f} MiB on average, {max_b / 2**20:.1f} MiB at the "
              f"largest canvas; at 250 pictures/s per device that is "
              f"{250 / 13 * mean_b / 2**20:.0f} MiB/s."]
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        write_block(*BLOCK, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
