"""Mixed-size folder: `reiqa extract` vs the released demo computation in PyTorch, one run.

Writes 30 real photos (scikit-image's bundled photos, cropped and scaled to
30 different sizes between 320x240 and 800x600, JPEG quality 90) and two
random ResNet-50 Re-IQA models (plain PyTorch, tests/torch_reference.py,
converted with `reiqa convert`), then times, each in a fresh process:

* PyTorch: the released demos' computation for both encoders, image by image
  (PIL open + convert('RGB'), half scale by resize((w//2, h//2)), ToTensor,
  ImageNet Normalize for the content encoder, eval mode, concat(full, half));
* ours, cold: `reiqa extract` with an empty compilation cache;
* ours, warm: the same command again (the cache now holds the programs).

"process" is the wall time of the whole command (imports, model loading,
compiling, decoding, computing, writing); "extract" is the part after the
models are loaded. It also checks that both give the same features.

    .venv/bin/python benchmarks/extract_mixed.py                  # prints the table
    .venv/bin/python benchmarks/extract_mixed.py --write-results  # and records it in RESULTS.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the plain-PyTorch statement of the architecture
MARKERS = ("<!-- extract-scale:begin -->", "<!-- extract-scale:end -->")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "stereo_motorcycle")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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
    from torch_reference import ReIQANet, randomize

    from reiqa_jax.convert import torch_to_reiqa

    out = {}
    for seed, name in enumerate(("quality", "content")):
        pth = root / f"{name}.pth"
        model = randomize(ReIQANet(), seed=seed)
        torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, pth)
        out[name] = Path(torch_to_reiqa(pth, root / name))
    return out


TORCH_SIDE = r"""
import json, sys, time
start = time.perf_counter()
import numpy as np, torch
from PIL import Image
sys.path.insert(0, sys.argv[1])
from torch_reference import ReIQANet
MEAN, STD = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
models = {}
for name in ("quality", "content"):
    model = ReIQANet()
    state = torch.load(sys.argv[2] + f"/{name}.pth", weights_only=True)["model"]
    model.load_state_dict({k[len("module."):]: v for k, v in state.items()})
    models[name] = model.eval()
paths = json.loads(sys.argv[3])
loop = time.perf_counter()
feats = {name: [] for name in models}
with torch.inference_mode():
    for path in paths:
        image = Image.open(path).convert("RGB")
        half = image.resize((image.size[0] // 2, image.size[1] // 2))
        for name, model in models.items():
            row = []
            for img in (image, half):
                # torchvision's ToTensor: HWC uint8 -> contiguous CHW float in [0, 1]
                x = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous().float().div(255)
                if name == "content":
                    x = (x - MEAN) / STD
                row.append(model.encoder(x[None]))
            feats[name].append(torch.cat(row, 1)[0].numpy())
end = time.perf_counter()
np.savez(sys.argv[4], **{k: np.stack(v) for k, v in feats.items()})
print(json.dumps({"extract": end - loop, "process": end - start}))
"""


def run_torch(paths: list[Path], root: Path) -> dict:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", TORCH_SIDE, str(ROOT / "tests"), str(root),
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
    cache = Path(tempfile.mkdtemp(prefix="jax-cache-", dir=root))
    rows = {"PyTorch (released demo computation)": run_torch(paths, root)}
    rows["reiqa extract, cold (empty compilation cache)"] = run_ours(
        folder, ckpts, root / "ours.npz", cache, extra)
    rows["reiqa extract, warm (second run)"] = run_ours(folder, ckpts, root / "ours.npz", cache,
                                                       extra)
    ours = np.load(root / "ours.npz")
    ref = np.load(root / "torch.npz")
    order = [list(map(str, paths)).index(p) for p in ours["paths"]]
    worst = max(float(np.abs(ours[n] - ref[n][order]).max() / np.abs(ref[n]).max())
                for n in ("quality", "content"))
    torch_time = rows["PyTorch (released demo computation)"]

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        MARKERS[0],
        "## Mixed-size folder (`benchmarks/extract_mixed.py`)",
        "",
        f"- Date: {when}; command: `.venv/bin/python benchmarks/extract_mixed.py"
        + (f" --buckets {args.buckets}" if args.buckets is not None else "") + "`",
        f"- Device: jax {jax.__version__} on `{jax.default_backend()}`, {os.cpu_count()} CPU "
        f"threads; CPU: {cpu_name()}; load average at the end: {os.getloadavg()[0]:.1f}",
        f"- {len(paths)} real photos (scikit-image), {len(set(sizes(args.count)))} different sizes "
        "from 320x240 to 800x600, JPEG q90; both encoders (ResNet-50), full + half scale, "
        "float32. Each side in a fresh process; *process* includes imports, model loading and "
        "writing, *extract* is the loop after the models are loaded (compiling included).",
        f"- Largest difference from the PyTorch features: {worst:.1e} (max |delta| / max |ref|).",
        "",
        "| side | process (s) | extract (s) | images/s (extract) | speed vs PyTorch (extract) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['process']:.1f} | {row['extract']:.1f} | "
                     f"{len(paths) / row['extract']:.2f} | "
                     f"{torch_time['extract'] / row['extract']:.2f}x |")
    lines.append(MARKERS[1])
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        results = Path(__file__).with_name("RESULTS.md")
        old = results.read_text()
        if MARKERS[0] in old:
            head, rest = old.split(MARKERS[0], 1)
            old = head + rest.split(MARKERS[1], 1)[1].lstrip("\n")
        results.write_text(old.rstrip("\n") + "\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
