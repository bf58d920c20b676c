"""Tone-curve distortions: 13 brighten, 14 darken, 15 mean shift, 18 contrast.

The official curves are ``scipy.interpolate.UnivariateSpline`` fits through a
few control points (brighten/darken: k=2 through (0,0), (.5,c), (1,1);
contrast: default k=3, s=5 through five points). We fit exactly those splines
with SciPy once at import, convert each to piecewise polynomials with
``PPoly.from_spline`` and stack the five levels into constant tables, so a
traced ``level`` just indexes a table and the curve is evaluated in JAX.

Ops: ``op(key, image, level) -> image``; image (H, W, 3) float32 in [0, 1] on
the uint8 grid; level int 0-4 or traced int32 scalar; key unused (all four
are deterministic). Output is quantised like the official ``astype(uint8)``
(truncation).
"""

import jax.numpy as jnp
import numpy as np
from scipy.interpolate import PPoly, UnivariateSpline

from reiqa_jax.augment.colorspace import lab_to_rgb, rgb_to_lab
from reiqa_jax.augment.quantize import truncate_u8

BRIGHTEN_LEVELS = (0.1, 0.2, 0.4, 0.7, 1.1)
DARKEN_LEVELS = (0.05, 0.1, 0.2, 0.4, 0.8)
MEAN_SHIFT_LEVELS = (0.15, 0.08, 0.0, -0.08, -0.15)
CONTRAST_LEVELS = (0.3, 0.15, 0.0, -0.4, -0.6)


def ppoly_table(splines):
    """Stack SciPy splines into (left_ends (L, P), coefs (L, K+1, P)) float32.

    Zero-length pieces from repeated end knots are dropped; levels with fewer
    pieces are padded with +inf left ends (never selected) and zero
    coefficients. Coefficients are in PPoly's local power basis, highest
    degree first: piece i is sum_m c[m, i] * (x - left[i]) ** (K - m).
    Outside the knot range the first/last piece extrapolates, as splev does.
    """
    pieces = []
    for spline in splines:
        pp = PPoly.from_spline(spline._eval_args)
        keep = np.diff(pp.x) > 0
        pieces.append((pp.x[:-1][keep], pp.c[:, keep]))
    n_pieces = max(len(left) for left, _ in pieces)
    degree = max(c.shape[0] for _, c in pieces)
    lefts = np.full((len(pieces), n_pieces), np.inf)
    coefs = np.zeros((len(pieces), degree, n_pieces))
    for i, (left, c) in enumerate(pieces):
        lefts[i, : len(left)] = left
        coefs[i, degree - c.shape[0] :, : c.shape[1]] = c
    return lefts.astype(np.float32), coefs.astype(np.float32)


def eval_curve(x, table, level):
    """Evaluate level ``level`` of a ``ppoly_table`` at x (any shape, float32)."""
    lefts = jnp.asarray(table[0])[level]  # (P,)
    coefs = jnp.asarray(table[1])[level]  # (K+1, P)
    # Piece index = number of interior left ends <= x (first piece extrapolates left).
    idx = jnp.sum(x[..., None] >= lefts[1:], axis=-1) if lefts.shape[0] > 1 else 0
    t = x - lefts[idx]
    y = jnp.zeros_like(x)
    for m in range(coefs.shape[0]):  # Horner, static degree
        y = y * t + coefs[m][idx]
    return y


def _fit(x, y, **kw):
    return UnivariateSpline(np.asarray(x, float), np.asarray(y, float), **kw)


# The official ``curvefit`` (brighten): k=2 spline through (0,0), (.5, .5+.5a), (1,1).
BRIGHTEN_CURVES = ppoly_table(
    [_fit([0, 0.5, 1], [0, 0.5 + 0.5 * a, 1], k=2) for a in BRIGHTEN_LEVELS]
)
DARKEN_CURVES = ppoly_table(
    [_fit([0, 0.5, 1], [0, 0.5 - p / 2, 1], k=2) for p in DARKEN_LEVELS]
)
# Default k=3 and smoothing s=len(x), as the official call leaves them.
CONTRAST_CURVES = ppoly_table(
    [_fit([0, 0.3, 0.5, 0.7, 1], [0, 0.25 - p / 4, 0.5, 0.75 + p / 4, 1]) for p in CONTRAST_LEVELS]
)


def brighten(key, image, level):
    """13: brighten: the curve on Lab lightness and on RGB, averaged 1:2.

    out = (2 * clip(curve(rgb)) + clip(lab2rgb(L -> 100 * clip(curve(L / 100))))) / 3.
    image (H, W, 3) float32 [0, 1] -> same shape/dtype, truncated to the u8 grid.
    """
    del key
    lab = rgb_to_lab(image)
    lightness = jnp.clip(eval_curve(lab[..., 0] / 100.0, BRIGHTEN_CURVES, level), 0.0, 1.0) * 100.0
    from_lab = jnp.clip(lab_to_rgb(lab.at[..., 0].set(lightness)), 0.0, 1.0)
    from_rgb = jnp.clip(eval_curve(image, BRIGHTEN_CURVES, level), 0.0, 1.0)
    return truncate_u8((2.0 * from_rgb + from_lab) / 3.0)


def darken(key, image, level):
    """14: darken: k=2 curve through (0,0), (.5, .5 - p/2), (1,1) on each channel."""
    del key
    return truncate_u8(jnp.clip(eval_curve(image, DARKEN_CURVES, level), 0.0, 1.0))


def mean_shift(key, image, level):
    """15: mean shift: add a constant (+.15 ... -.15) to every channel.

    Level 2 is the identity and |shift| is symmetric around it: severity is
    not monotonic in level (the official table).
    """
    del key
    amount = jnp.asarray(MEAN_SHIFT_LEVELS, jnp.float32)[level]
    return truncate_u8(image + amount)


def contrast_change(key, image, level):
    """18: contrast change: cubic smoothing-spline curve on each channel.

    Levels 0-1 raise contrast, 3-4 lower it; level 2 is mild (the curve
    through (.3, .25), (.7, .75) is not the identity).
    """
    del key
    return truncate_u8(jnp.clip(eval_curve(image, CONTRAST_CURVES, level), 0.0, 1.0))
