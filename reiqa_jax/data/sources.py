"""The training image list.

``config.data`` is one of:

* a CSV with an ``Image_path`` column (the official ``csv_files/moco_train.csv``
  format; ``image_path``, ``path``... are accepted too, see
  ``reiqa_jax.inputs``) whose relative paths are resolved against the CSV's
  own folder;
* a folder searched recursively for image files (sorted);
* ``skimage:NAME,NAME,...``: those photos bundled with scikit-image
  (``reiqa_jax.data.sample_photos``; ``skimage`` alone: all of them), their
  shorter side brought down to 384 pixels when longer (so a 384 x 512 or
  smaller training window sees a good part of each), written once as PNG
  files to the cache folder below;
* ``synthetic:N`` or ``synthetic:N:WIDTHxHEIGHT``: N procedural dead-leaves
  pictures (``reiqa_jax.data.synthetic``; default 512x384, the size of the
  official KADIS-700k training pictures). They are drawn from a fixed seed,
  so ``synthetic:N`` is the same N pictures on every machine, and the first
  N of ``synthetic:M`` for M > N. They are written once as PNG files to
  ``$REIQA_JAX_SYNTHETIC_DIR``, else ``$XDG_CACHE_HOME/reiqa-jax/synthetic``,
  else ``~/.cache/reiqa-jax/synthetic`` (one folder per size and generator
  version), in parallel over the CPU cores, and reused by later runs;
* any of these followed by ``*K``: its list K times over (a small set
  sampled as often as a larger one, with K times longer epochs);
* several of these joined by ``+`` (``synthetic:100*4+skimage:moon,grass``):
  their lists one after the other. A path that exists as written is never
  split at ``+`` or ``*``.

Every listed file must exist (checked up front, before any compute).
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from reiqa_jax.data.sample_photos import ALL
from reiqa_jax.errors import ReiqaError

SYNTHETIC_ENV = "REIQA_JAX_SYNTHETIC_DIR"
SYNTHETIC_DEFAULT_WH = (512, 384)
SYNTHETIC_SEED = 0
_SYNTHETIC = re.compile(r"synthetic:(\d+)(?::(\d+)x(\d+))?")
# Bump when the generator's output changes, so old cached pictures are not reused.
SYNTHETIC_VERSION = 1


class DataError(ReiqaError, ValueError):
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


def cache_root() -> Path:
    """Where generated training pictures (synthetic and bundled) are written."""
    root = os.environ.get(SYNTHETIC_ENV, "").strip()
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        root = os.path.join(base, "reiqa-jax", "synthetic")
    return Path(root).expanduser()


def synthetic_dir(hw: tuple[int, int]) -> Path:
    """The cache folder of the synthetic pictures of size ``hw`` = (H, W)."""
    return cache_root() / f"dead_leaves-v{SYNTHETIC_VERSION}-seed{SYNTHETIC_SEED}-{hw[1]}x{hw[0]}"


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


def _parts(data: str) -> list[tuple[str, int]] | None:
    """``A*K+B`` -> [(A, K), (B, 1)]; None when ``data`` is one plain source."""
    if Path(data).expanduser().exists() or not re.search(r"[+]|\*\d+$", data):
        return None
    parts = []
    for part in data.split("+"):
        match = re.fullmatch(r"(.*)\*(\d+)", part)
        if match and not Path(part).expanduser().exists():
            if int(match.group(2)) < 1:
                raise DataError(f"training data {data!r}: repeat counts must be at least 1")
            parts.append((match.group(1), int(match.group(2))))
        else:
            parts.append((part, 1))
    return parts


def bundled_images(names: list[str], *, shorter: int = 384) -> list[str]:
    """Paths of scikit-image's bundled photos ``names`` (shorter side at most
    ``shorter``), written to the cache folder where missing."""
    from PIL import Image

    from reiqa_jax.data.sample_photos import load_sample_photo

    folder = cache_root() / f"skimage-{shorter}"
    paths = []
    for name in names:
        path = folder / f"{name}.png"
        if not path.exists():
            try:
                image = Image.fromarray(load_sample_photo(name))
            except (AttributeError, ValueError, OSError):
                raise DataError(f"scikit-image has no bundled photo {name!r}") from None
            scale = shorter / min(image.size)
            if scale < 1:
                image = image.resize((round(image.size[0] * scale),
                                      round(image.size[1] * scale)), Image.BICUBIC)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{name}.{os.getpid()}.tmp.png"
            image.save(tmp)
            os.replace(tmp, path)
        paths.append(str(path))
    return paths


def count_images(data: str) -> int:
    """How many images ``data`` names, without making synthetic pictures."""
    parts = _parts(data)
    if parts is not None:
        return sum(count_images(part) * k for part, k in parts)
    synthetic = parse_synthetic(data)
    if synthetic is not None:
        return synthetic[0]
    names = _bundled_names(data)
    if names is not None:
        return len(names)
    return len(training_images(data))


def _bundled_names(data: str) -> list[str] | None:
    """The photo names of a ``skimage`` or ``skimage:NAMES`` source; None for other data."""
    if data == "skimage":
        return list(ALL)
    if data.startswith("skimage:"):
        return [n for n in data.split(":", 1)[1].split(",") if n]
    return None


def training_images(data: str) -> list[str]:
    """Paths of the training images named by ``data`` (module docstring), in order."""
    from reiqa_jax.inputs import InputError, expand_inputs

    if not data:
        raise DataError("no training data: set --config.data to a CSV (column Image_path), "
                        "an image folder or synthetic:N")
    parts = _parts(data)
    if parts is not None:
        return [p for part, k in parts for p in training_images(part) * k]
    names = _bundled_names(data)
    if names is not None:
        if not names:
            raise DataError(f"training data {data!r}: name the photos, e.g. skimage:moon,grass")
        return bundled_images(names)
    synthetic = parse_synthetic(data)
    if synthetic is not None:
        return synthetic_images(*synthetic)
    source = Path(data).expanduser()
    if not source.exists():
        raise DataError(f"training data {data} does not exist")
    if not (source.is_dir() or source.suffix.lower() in (".csv", ".txt", ".lst")):
        raise DataError(f"training data {data} is neither a folder nor a .csv/.txt list")
    try:
        expanded = expand_inputs([str(source)])
    except InputError as exc:
        raise DataError(str(exc)) from None
    paths = expanded.paths
    if not paths:
        raise DataError(f"no images in {data}")
    missing = [entry for path, entry in zip(paths, expanded.entries) if not os.path.exists(path)]
    if missing:
        where = f"relative paths are taken from {source.parent}; " if source.is_file() else ""
        raise DataError(f"{len(missing)} of the {len(paths)} training images in {data} do not "
                        f"exist ({where}first: {', '.join(missing[:3])})")
    return paths


def fingerprint_root(data: str) -> Path:
    """The folder the image list's fingerprint is taken from: the data folder,
    the list's folder, or the cache folder of generated pictures (a data
    string that is not a path), so a dataset moved as a whole keeps it."""
    source = Path(data).expanduser()
    if source.exists():
        return source if source.is_dir() else source.parent
    return cache_root()


def fingerprint(paths: list[str], root: str | Path) -> str:
    """sha256 of the image list as paths relative to ``root`` (the data folder,
    or the list's folder), so a dataset moved as a whole keeps its fingerprint
    and any added, removed or reordered image changes it."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.path.relpath(path, root).encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()
