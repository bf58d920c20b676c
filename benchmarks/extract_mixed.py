"""Mixed-size folder: `reiqa extract` vs the released demo computation in PyTorch, one run.

Writes 30 real photos (scikit-image's bundled photos, cropped and scaled to
30 different sizes between 320x240 and 800x600, JPEG quality 90) and two
random ResNet-50 Re-IQA models (plain PyTorch, reiqa_jax/reference/torch_model.py,
converted with `reiqa convert`), then times, each in a fresh process:

* PyTorch: the released demos' computation for both encoders, image by image
  (benchmarks/torch_demo.py: PIL open + convert('RGB'), half scale by
  resize((w//2, h//2)), ToTensor, ImageNet Normalize for the content
  encoder, eval mode, concat(full, half));
* ours, cold: `reiqa extract` with an empty compilation cache;
* ours, warm: the same command again (the cache now holds the programs).

"process" is the wall time of the whole command (imports, model loading,
compiling, decoding, computing, writing); "extract" is the part after the
models are loaded. It also checks that both give the same features.
``--rounds N`` runs the three N times, in turn (each cold run with a new,
empty cache), and keeps each side's fastest (this shared machine's load
moves every side by 10-30 %).

    .venv/bin/python benchmarks/extract_mixed.py                  # prints the table
    .venv/bin/python benchmarks/extract_mixed.py --rounds 3 --write-results  # and records it
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import RESULTS, cpu_name, write_block  # noqa: E402  (benchmarks/common.py)
MARKERS = ("<!-- extract-scale:begin -->", "<!-- extract-scale:end -->")
SECTION_TITLE = "## Extraction at dataset scale (`reiqa extract`, issue 8)"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "stereo_motorcycle")


def sizes(count: int, seed: int = 0) -> list[tuple[int, int]]:
    """``count`` distinct (width, height) pairs, 320..800 x 240..600."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, int]] = []
    while len(out) < count:
        size = (int(rng.integers(320, 801)), int(rng.integers(240, 601)))
        if size not in out:
            out.append(size)
    return out


def write_photos(folder: Path, count: int) -> list[Path]:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for name in PHOTOS:
        image = getattr(data, name)()
        for part in (image if name == "stereo_motorcycle" else (image,))[:2]:
            sources.append(Image.fromarray(part).convert("RGB"))
    paths = []
    for i, (width, height) in enumerate(sizes(count)):
        source = sources[i % len(sources)]
        # Scale to cover the size (a different zoom for each), then a centre crop.
        zoom = max(width / source.width, height / source.height) * (1.0 + 0.1 * (i % 4))
        scaled = source.resize((max(width, round(source.width * zoom)),
                                max(height, round(source.height * zoom))), Image.BICUBIC)
        left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
        path = folder / f"{i:02d}_{width}x{height}.jpg"
        scaled.crop((left, top, left + width, top + height)).save(path, quality=90)
        paths.append(path)
    return paths


def make_checkpoints(root: Path) -> dict[str, Path]:
    import torch
    from reiqa_jax.reference.torch_model import ReIQANet, randomize

    from reiqa_jax.convert import torch_to_reiqa

    out = {}
    for seed, name in enumerate(("quality", "content")):
        pth = root / f"{name}.pth"
        model = randomize(ReIQANet(), seed=seed)
        torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, pth)
        out[name] = Path(torch_to_reiqa(pth, root / name))
    return out


def run_torch(paths: list[Path], root: Path) -> dict:
    """benchmarks/torch_demo.py in a fresh process."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "torch_demo.py"), str(root),
         json.dumps([str(p) for p in paths]), str(root / "torch.npz")],
        check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


def run_ours(folder: Path, ckpts: dict, output: Path, cache: Path, extra=()) -> dict:
    env = dict(os.environ, REIQA_JAX_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "reiqa_jax.cli", "extract", "--quality-ckpt",
               str(ckpts["quality"]), "--content-ckpt", str(ckpts["content"]), "-o", str(output),
               "--overwrite", "--no-progress", *extra, str(folder)]
    start = time.perf_counter()
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    process = time.perf_counter() - start
    # The command's last line: "... N image(s) in T s -> OUT", T from models loaded to written.
    found = re.search(r"image\(s\) in ([0-9.]+) s", out.stderr)
    return {"process": process, "extract": float(found.group(1)) if found else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--buckets", type=int, default=None, help="reiqa extract --buckets")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run PyTorch, a first run (empty compilation cache) and a second "
                             "run this many times, in turn, and keep each side's fastest")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)

    import jax

    root = args.workdir or Path(tempfile.mkdtemp(prefix="reiqa-mixed-"))
    root.mkdir(parents=True, exist_ok=True)
    folder = root / "photos"
    paths = write_photos(folder, args.count)
    ckpts = make_checkpoints(root) if not (root / "quality").exists() else {
        name: root / name for name in ("quality", "content")}
    extra = ["--buckets", str(args.buckets)] if args.buckets is not None else []
    ours_devices = os.environ.get("JAX_NUM_CPU_DEVICES", "2 (its default)")
    torch_runs, cold_runs, warm_runs = [], [], []
    for _ in range(args.rounds):  # the three sides in turn, each round
        cache = Path(tempfile.mkdtemp(prefix="jax-cache-", dir=root))  # empty: a first run
        torch_runs.append(run_torch(paths, root))
        cold_runs.append(run_ours(folder, ckpts, root / "ours.npz", cache, extra))
        warm_runs.append(run_ours(folder, ckpts, root / "ours.npz", cache, extra))
        shutil.rmtree(cache)
    best = lambda runs: min(runs, key=lambda row: row["extract"])  # noqa: E731
    rows = {"PyTorch (released demo computation)": best(torch_runs),
            "reiqa extract, cold (empty compilation cache)": best(cold_runs),
            "reiqa extract, warm (second run)": best(warm_runs)}
    ours = np.load(root / "ours.npz")
    ref = np.load(root / "torch.npz")
    order = [list(map(str, paths)).index(p) for p in ours["paths"]]
    worst = max(float(np.abs(ours[n] - ref[n][order]).max() / np.abs(ref[n]).max())
                for n in ("quality", "content"))
    torch_time = rows["PyTorch (released demo computation)"]

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "### Mixed-size folder (`benchmarks/extract_mixed.py`)",
        "",
        f"- Date: {when}; command: `.venv/bin/python benchmarks/extract_mixed.py"
        + (f" --buckets {args.buckets}" if args.buckets is not None else "")
        + (f" --rounds {args.rounds}" if args.rounds > 1 else "") + "`",
        f"- Device: jax {jax.__version__} on `{jax.default_backend()}`, {os.cpu_count()} CPU "
        f"threads; CPU: {cpu_name()}; load average at the end: {os.getloadavg()[0]:.1f}",
        f"- {len(paths)} real photos (scikit-image), {len(set(sizes(args.count)))} different sizes "
        "from 320x240 to 800x600, JPEG q90; both encoders (ResNet-50), full + half scale, "
        "float32. Each side in a fresh process; *process* includes imports, model loading and "
        "writing, *extract* is the loop after the models are loaded (compiling included)."
        + (f" The three sides ran in turn {args.rounds} times (each cold run with a new, empty "
           "cache); each row is that side's fastest." if args.rounds > 1 else "")
        + f" `reiqa extract` ran on {ours_devices} CPU device(s).",
        f"- Largest difference from the PyTorch features: {worst:.1e} (max |delta| / max |ref|).",
        "",
        "| side | process (s) | extract (s) | images/s (extract) | speed vs PyTorch (extract) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['process']:.1f} | {row['extract']:.1f} | "
                     f"{len(paths) / row['extract']:.2f} | "
                     f"{torch_time['extract'] / row['extract']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        record("mixed", text)
    return 0


def record(block: str, text: str) -> None:
    """Puts ``text`` into RESULTS.md as sub-block ``block`` of this section (replacing it)."""
    if MARKERS[0] not in RESULTS.read_text():
        write_block(*MARKERS, SECTION_TITLE)
    write_block(f"<!-- extract-scale:{block}:begin -->", f"<!-- extract-scale:{block}:end -->",
                text, before=MARKERS[1])

if __name__ == "__main__":
    sys.exit(main())
