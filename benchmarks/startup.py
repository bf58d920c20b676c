"""Start-up of the `reiqa` command: whole processes, as a user runs them.

Times, each as a fresh process (`reiqa` beside this Python, else
`python -m reiqa_jax.cli`):

* `reiqa --help`;
* `reiqa extract` of one 64 x 64 photo with two encoders (random ResNet-50s
  by default, saved by this script) into a new .npz;
* `reiqa score` of the same photo with a model folder this script makes
  (`reiqa extract` of 12 small photos, then `reiqa regress --save`, ridge);
* `python -c "import jax; jax.devices()"`, the floor every command that
  computes pays.

The compilation cache is a folder of this run's own, filled by an untimed
first run of each command, so the timed runs are warm (a user's second run).
``--compare DIR`` times a second checkout of reiqa-jax (e.g. the commit
before a change, from `git archive`) in the same rounds: each round runs
every command once per checkout, in turn, so that the load of a shared
machine falls on both alike. The table gives each median and minimum over
``--repeats`` rounds.

    .venv/bin/python benchmarks/startup.py                       # prints the table
    .venv/bin/python benchmarks/startup.py --compare /tmp/base --write-results
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import cpu_name, pythonpath_with, write_block  # noqa: E402  (benchmarks/common.py)

MARKERS = ("<!-- startup:begin -->", "<!-- startup:end -->")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def random_checkpoint(folder: Path, depth: int, width: float, seed: int) -> Path:
    """A Re-IQA encoder with He-scaled random weights and non-trivial BatchNorm statistics."""
    from reiqa_jax.checkpoint import build_model, expected_shapes, save_model

    arch = {"depth": depth, "width": width, "feat_dim": 128}
    rng = np.random.default_rng(seed)
    arrays = {}
    for collection, shapes in expected_shapes(arch).items():
        arrays[collection] = {}
        for path, shape in shapes.items():
            leaf = path.rsplit("/", 1)[1]
            if leaf == "kernel":
                values = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
            elif leaf in ("scale", "var"):
                values = 0.5 + rng.random(shape)
            else:
                values = 0.2 * rng.standard_normal(shape)
            arrays[collection][path] = values.astype(np.float32)
    return Path(save_model(folder, build_model(arch, arrays)))


def photo(name: str, size: tuple[int, int], path: Path) -> Path:
    from PIL import Image
    from skimage import data

    Image.fromarray(getattr(data, name)()).convert("RGB").resize(size, Image.BICUBIC).save(path)
    return path


def reiqa(checkout: Path) -> list[str]:
    script = Path(sys.executable).with_name("reiqa")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reiqa_jax.cli"]


def environment(checkout: Path, cache: Path) -> dict:
    """The checkout's package first on the path; the run's own compilation cache."""
    env = dict(os.environ, REIQA_JAX_CACHE_DIR=str(cache))
    env["PYTHONPATH"] = pythonpath_with(checkout)
    return env


def run(command: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=600)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="another checkout of reiqa-jax to time in the same rounds")
    parser.add_argument("--compare-label", default=None,
                        help="its name in the table (default: the folder's name)")
    parser.add_argument("--label", default="this checkout", help="this checkout's name")
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--write-results", action="store_true",
                        help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()

    checkouts = {args.label: ROOT}
    if args.compare is not None:
        checkouts[args.compare_label or args.compare.name] = args.compare.resolve()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="reiqa-startup-") as tmp:
        root = Path(tmp)
        quality = random_checkpoint(root / "quality", args.depth, args.width, seed=0)
        content = random_checkpoint(root / "content", args.depth, args.width, seed=1)
        image = photo("astronaut", (64, 64), root / "one.png")
        (root / "set").mkdir()
        rows = ["path,score"]
        for i in range(12):
            photo(PHOTOS[i % len(PHOTOS)], (48 + 4 * i, 40), root / "set" / f"{i:02d}.png")
            rows.append(f"{i:02d}.png,{1 + (7 * i) % 10 / 2}")
        (root / "set" / "scores.csv").write_text("\n".join(rows) + "\n")
        make_env = environment(ROOT, root / "cache-model")
        run([*reiqa(ROOT), "extract", "--quality-ckpt", str(quality), "--content-ckpt",
             str(content), "-o", str(root / "set.npz"), "--no-progress",
             str(root / "set" / "scores.csv")], make_env, root)
        run([*reiqa(ROOT), "regress", str(root / "set.npz"), str(root / "set" / "scores.csv"),
             "--out", str(root / "report"), "--save", str(root / "model"), "--models", "ridge"],
            make_env, root)

        out = root / "out.npz"
        commands = {
            "`reiqa --help`": ["--help"],
            "`reiqa extract` of one 64x64 photo, two encoders": [
                "extract", "--quality-ckpt", str(quality), "--content-ckpt", str(content),
                "-o", str(out), "--no-progress", str(image)],
            "`reiqa score` of one 64x64 photo": [
                "score", str(image), "--model", str(root / "model"), "--no-progress"],
        }
        floor = "`python -c 'import jax; jax.devices()'`"
        times: dict[tuple[str, str], list[float]] = {}

        def once(label: str, checkout: Path, name: str) -> float:
            env = environment(checkout, root / f"cache-{list(checkouts).index(label)}")
            if out.exists():
                out.unlink()
            if name == floor:
                return run([sys.executable, "-c", "import jax; jax.devices()"], env, root)
            return run([*reiqa(checkout), *commands[name]], env, root)

        names = [*commands, floor]
        for label, checkout in checkouts.items():  # warm the compilation caches, untimed
            for name in names:
                once(label, checkout, name)
        for _ in range(args.repeats):
            for name in names:
                for label, checkout in checkouts.items():
                    times.setdefault((name, label), []).append(once(label, checkout, name))
        shutil.rmtree(root / "cache-model", ignore_errors=True)

    load_after = os.getloadavg()[0]
    labels = list(checkouts)
    header = "| command | " + " | ".join(f"{label}: median (min) s" for label in labels)
    if len(labels) == 2:
        header += f" | speed-up: {labels[1]} / {labels[0]} (medians)"
    lines = [header + " |", "|---|" + "---:|" * (len(labels) + (len(labels) == 2))]
    for name in names:
        medians = [statistics.median(times[name, label]) for label in labels]
        cells = [f"{statistics.median(times[name, label]):.2f} ({min(times[name, label]):.2f})"
                 for label in labels]
        if len(labels) == 2:
            cells.append(f"{medians[1] / medians[0]:.2f}x")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    import jax

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["python", "benchmarks/startup.py", *sys.argv[1:]])
    text = "\n".join([
        "## Start-up of the `reiqa` command (`benchmarks/startup.py`)",
        "",
        f"- Date: {now}; command: `{command}`",
        f"- Machine: {cpu_name()}, {os.cpu_count()} CPU threads, jax {jax.__version__}; load "
        f"average {load_before:.1f} at the start, {load_after:.1f} at the end (when above "
        f"the core count, other jobs shared the machine: compare the columns of one round, "
        f"not runs)",
        f"- Each command a fresh process, warm compilation cache (an untimed first run); "
        f"{args.repeats} rounds, each running every command once per checkout in turn. "
        f"Encoders: random ResNet-{args.depth} (width {args.width:g}) quality and content; "
        f"the score model folder holds the same two and a ridge regressor.",
        "",
        table,
    ])
    print(text)
    if args.write_results:
        write_block(*MARKERS, text)


if __name__ == "__main__":
    main()
