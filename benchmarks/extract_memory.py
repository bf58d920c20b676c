"""Peak memory for one 4000x3000 photo: `reiqa extract` vs the released demo computation in PyTorch.

Writes one real photo (scikit-image's motorcycle, scaled to 4000x3000, JPEG
quality 90) and two random ResNet-50 Re-IQA models, then runs, each in a
fresh process, both encoders at full and half scale:

* PyTorch: benchmarks/torch_demo.py (the released demos' computation);
* ours: `reiqa extract` with its defaults (CPU: batch budget from the
  machine's memory; a warm compilation cache, so compiling is not counted).

Peak memory is the process's maximum resident set size (``ru_maxrss`` from
``wait4``), which includes the interpreter, the libraries and the weights.

    .venv/bin/python benchmarks/extract_memory.py [--write-results]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import cpu_name  # noqa: E402  (benchmarks/common.py)
from extract_mixed import make_checkpoints, record  # noqa: E402

SIZE = (4000, 3000)


def write_photo(path: Path) -> Path:
    from PIL import Image
    from skimage import data

    left = data.stereo_motorcycle()[0]
    Image.fromarray(left).resize(SIZE, Image.BICUBIC).save(path, quality=90)
    return path


def measure(command: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, output) of a child process."""
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed ({process.returncode}): {text[-2000:]}")
    return wall, usage.ru_maxrss * 1024, text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)

    import jax

    root = args.workdir or Path(tempfile.mkdtemp(prefix="reiqa-memory-"))
    root.mkdir(parents=True, exist_ok=True)
    photo = write_photo(root / "photo_4000x3000.jpg")
    ckpts = make_checkpoints(root) if not (root / "quality").exists() else {
        name: root / name for name in ("quality", "content")}
    rows = {}
    wall, rss, _ = measure([sys.executable, str(ROOT / "benchmarks" / "torch_demo.py"),
                            str(root), json.dumps([str(photo)]), str(root / "torch.npz")])
    rows["PyTorch (released demo computation)"] = (wall, rss)
    env = dict(os.environ, REIQA_JAX_CACHE_DIR=str(root / "jax-cache"))
    command = [sys.executable, "-m", "reiqa_jax.cli", "extract", "--quality-ckpt",
               str(ckpts["quality"]), "--content-ckpt", str(ckpts["content"]), "-o",
               str(root / "ours.npz"), "--overwrite", "--no-progress", str(photo)]
    measure(command, env)  # fills the compilation cache
    wall, rss, _ = measure(command, env)
    rows["reiqa extract (defaults, warm compilation cache)"] = (wall, rss)

    import numpy as np

    ours, ref = np.load(root / "ours.npz"), np.load(root / "torch.npz")
    worst = max(float(np.abs(ours[n] - ref[n]).max() / np.abs(ref[n]).max())
                for n in ("quality", "content"))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "### Peak memory, one 4000x3000 photo (`benchmarks/extract_memory.py`)",
        "",
        f"- Date: {when}; command: `.venv/bin/python benchmarks/extract_memory.py`",
        f"- Device: jax {jax.__version__} on `{jax.default_backend()}`, {os.cpu_count()} CPU "
        f"threads; CPU: {cpu_name()}; load average at the end: {os.getloadavg()[0]:.1f}",
        "- Both encoders (ResNet-50), full + half scale, float32, one fresh process each; peak "
        "resident memory of the whole process (interpreter, libraries, weights included). "
        f"Largest difference from the PyTorch features: {worst:.1e}.",
        "",
        "| side | peak memory (GiB) | wall time (s) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {rss / 2**30:.2f} | {wall:.1f} |" for name, (wall, rss) in rows.items()]
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        record("memory", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
