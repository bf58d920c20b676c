"""Classical no-reference statistics: the demo's reference that needs no training.

Three numbers per image, each a quality cue that a linear regressor can use:
sharpness (mean gradient magnitude, Sobel), fine detail / noise (variance of
the Laplacian) and contrast (standard deviation of the grey levels, RMS
contrast). ``combined`` is all three side by side (what the regression
protocol gets as the strongest classical reference).
"""
from __future__ import annotations

import numpy as np

NAMES = ("mean_gradient_magnitude", "laplacian_variance", "rms_contrast")


def statistics(paths) -> dict[str, np.ndarray]:
    """Each statistic of each image: {name: float64 (N, 1)}, plus ``combined`` (N, 3)."""
    from PIL import Image
    from skimage import filters

    values = {name: [] for name in NAMES}
    for path in paths:
        grey = np.asarray(Image.open(path).convert("L"), np.float64) / 255.0
        values["mean_gradient_magnitude"].append(filters.sobel(grey).mean())
        values["laplacian_variance"].append(filters.laplace(grey).var())
        values["rms_contrast"].append(grey.std())
    out = {name: np.asarray(v, np.float64)[:, None] for name, v in values.items()}
    out["combined"] = np.concatenate([out[name] for name in NAMES], axis=1)
    return out
