"""The training image list.

``config.data`` is one of:

* a CSV with an ``Image_path`` column (the official ``csv_files/moco_train.csv``
  format; ``image_path``, ``path``... are accepted too, see
  ``reiqa_jax.inputs``) whose relative paths are resolved against the CSV's
  own folder;
* a folder searched recursively for image files (sorted);
* ``synthetic:N`` or ``synthetic:N:WIDTHxHEIGHT``: N procedural dead-leaves
  pictures (``reiqa_jax.data.synthetic``; default 512x384, the size of the
  official KADIS-700k training pictures). They are drawn from a fixed seed,
  so ``synthetic:N`` is the same N pictures on every machine, and the first
  N of ``synthetic:M`` for M > N. They are written once as PNG files to
  ``$REIQA_JAX_SYNTHETIC_DIR``, else ``$XDG_CACHE_HOME/reiqa-jax/synthetic``,
  else ``~/.cache/reiqa-jax/synthetic`` (one folder per size and generator
  version), in parallel over the CPU cores, and reused by later runs.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

SYNTHETIC_ENV = "REIQA_JAX_SYNTHETIC_DIR"
SYNTHETIC_DEFAULT_WH = (512, 384)
SYNTHETIC_SEED = 0
_SYNTHETIC = re.compile(r"synthetic:(\d+)(?::(\d+)x(\d+))?")
# Bump when the generator's output changes, so old cached pictures are not reused.
SYNTHETIC_VERSION = 1


class DataError(ValueError):
    """The training data cannot be used; the message is one line."""


def parse_synthetic(data: str) -> tuple[int, tuple[int, int]] | None:
    """``synthetic:N[:WxH]`` -> (N, (H, W)); None for other data strings."""
    if not data.startswith("synthetic:"):
        return None
    match = _SYNTHETIC.fullmatch(data.strip())
    if not match:
        raise DataError(f"training data {data!r}: write synthetic:N or synthetic:N:WIDTHxHEIGHT "
                        f"(e.g. synthetic:2000:256x192)")
    n = int(match.group(1))
    w, h = (int(match.group(2)), int(match.group(3))) if match.group(2) else SYNTHETIC_DEFAULT_WH
    if n < 1:
        raise DataError(f"training data {data!r}: N must be at least 1")
    if min(w, h) < 32:
        raise DataError(f"training data {data!r}: pictures need at least 32 x 32 pixels")
    return n, (h, w)


def synthetic_dir(hw: tuple[int, int]) -> Path:
    """The cache folder of the synthetic pictures of size ``hw`` = (H, W)."""
    root = os.environ.get(SYNTHETIC_ENV, "").strip()
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        root = os.path.join(base, "reiqa-jax", "synthetic")
    return (Path(root).expanduser()
            / f"dead_leaves-v{SYNTHETIC_VERSION}-seed{SYNTHETIC_SEED}-{hw[1]}x{hw[0]}")


def _write_synthetic(job: tuple[str, int, tuple[int, int]]) -> None:
    from PIL import Image

    from reiqa_jax.data.synthetic import dead_leaves, rng_for

    path, index, hw = job
    picture = dead_leaves(rng_for(SYNTHETIC_SEED, index), hw)
    tmp = f"{path}.{os.getpid()}.tmp"
    Image.fromarray(picture).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)  # atomic: a concurrent writer makes the same bytes


def synthetic_images(n: int, hw: tuple[int, int], *, processes: int | None = None) -> list[str]:
    """Paths of synthetic pictures 0..n-1 of size ``hw`` = (H, W), made where missing."""
    folder = synthetic_dir(hw)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the synthetic picture folder {folder}: {exc} "
                        f"(set ${SYNTHETIC_ENV})") from None
    paths = [str(folder / f"{i:07d}.png") for i in range(n)]
    missing = [(p, i, tuple(hw)) for i, p in enumerate(paths) if not os.path.exists(p)]
    if missing:
        workers = min(len(missing) // 16 + 1, processes or os.cpu_count() or 1)
        if workers > 1:
            import multiprocessing

            # spawn: never fork a process that may already run JAX's threads
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                pool.map(_write_synthetic, missing, chunksize=16)
        else:
            for job in missing:
                _write_synthetic(job)
    return paths


def training_images(data: str) -> list[str]:
    """Paths of the training images named by ``data`` (CSV, folder or synthetic:N), in order."""
    from reiqa_jax.inputs import InputError, expand_inputs

    if not data:
        raise DataError("no training data: set --config.data to a CSV (column Image_path), "
                        "an image folder or synthetic:N")
    synthetic = parse_synthetic(data)
    if synthetic is not None:
        return synthetic_images(*synthetic)
    source = Path(data).expanduser()
    if not source.exists():
        raise DataError(f"training data {data} does not exist")
    if not (source.is_dir() or source.suffix.lower() in (".csv", ".txt", ".lst")):
        raise DataError(f"training data {data} is neither a folder nor a .csv/.txt list")
    try:
        paths = expand_inputs([str(source)]).paths
    except InputError as exc:
        raise DataError(str(exc)) from None
    if not paths:
        raise DataError(f"no images in {data}")
    return paths
