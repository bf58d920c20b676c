"""``reiqa demo``: the whole feature-export path on photos that ship with scikit-image.

Nothing is downloaded. Without checkpoints the demo makes untrained,
seeded ResNet-50 models (their features exercise the code, they do not
measure quality); give the converted released checkpoints to get real
Re-IQA features. Each photo is written as a PNG and as a JPEG at quality 10,
so the folder also holds a pair that a trained quality encoder tells apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

DEMO_PHOTOS = ("astronaut", "coffee", "chelsea")


def write_demo_images(directory: Path) -> list[Path]:
    """Writes the bundled photos (PNG) and a JPEG-10 copy of each; returns the paths."""
    from skimage import data

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DEMO_PHOTOS:
        image = Image.fromarray(getattr(data, name)())
        for suffix, options in ((".png", {}), ("_jpeg10.jpg", {"quality": 10})):
            path = directory / f"{name}{suffix}"
            image.save(path, **options)
            paths.append(path)
    return paths


def _untrained_checkpoint(directory: Path, seed: int, arch: dict) -> Path:
    from flax import nnx

    from reiqa_jax.checkpoint import save_model
    from reiqa_jax.models import ReIQAModel

    directory = directory.resolve()
    if not directory.exists():  # made once, reused by later demo runs
        model = ReIQAModel(**arch, rngs=nnx.Rngs(seed))
        save_model(directory, model, meta={"source": f"untrained, random init (seed {seed})"})
    return directory


def run_demo(workdir: Path, *, quality_ckpt=None, content_ckpt=None, dtype="float32",
             arch: dict | None = None) -> int:
    """Writes the photos, extracts their features into workdir/features.npz, prints a table.

    arch: architecture of the untrained models (default ResNet-50), unused with checkpoints.
    """
    from reiqa_jax.extract import extract_features

    workdir = Path(workdir)
    paths = write_demo_images(workdir / "images")
    if quality_ckpt is None and content_ckpt is None:
        print("reiqa demo: no checkpoints given; using untrained ResNet-50 encoders "
              "(convert the released .pth files for real features)", file=sys.stderr)
        arch = arch or {"depth": 50}
        quality_ckpt = _untrained_checkpoint(workdir / "untrained_quality", 0, arch)
        content_ckpt = _untrained_checkpoint(workdir / "untrained_content", 1, arch)
    features = extract_features([str(p) for p in paths], quality_ckpt=quality_ckpt,
                                content_ckpt=content_ckpt, dtype=dtype, progress=True)
    output = workdir / "features.npz"
    features.save_npz(output)
    print(f"{'image':28s} {'quality':>16s} {'content':>16s}")
    for i, path in enumerate(features.paths):
        cells = [f"{value.shape[1]}-d |f|={np.linalg.norm(value[i]):7.2f}" if value is not None
                 else "-" for value in (features.quality, features.content)]
        print(f"{Path(path).name:28s} {cells[0]:>16s} {cells[1]:>16s}")
    print(f"features of {len(features.paths)} images -> {output}")
    return 0 if not features.failed else 1
