"""Procedural training pictures: the dead-leaves model, textured, from a seed.

A dead-leaves picture is a stack of opaque shapes dropped on top of each other
(Matheron; Lee, Mumford and Huang 2001 showed it reproduces the scale
invariance, edge and occlusion statistics of natural images; Baradad et al.
2021 used textured dead leaves to pre-train contrastive encoders without any
photo). Here:

* **Shapes**: discs, ellipses and rotated rectangles, all inscribed in a disc
  of radius r, with r drawn from the power law p(r) ~ r^-3 on [r_min,
  r_max] (the scale-invariant exponent); centres uniform over the picture and
  a margin around it, so shapes are cut by the border as in a photo.
* **Occlusion**: shape 0 lies on top; each pixel shows the first shape that
  covers it (computed at once for all shapes: the minimum shape index per
  pixel); the few pixels no shape covers show a background leaf.
* **Colour and texture**: each picture draws a palette of colours (HSV with
  mostly moderate saturation, as in photos); each shape takes a palette
  colour with a small jitter and one of four textures: flat, a linear
  gradient, a sinusoidal grating, or 1/f^beta noise (from a bank of noise
  fields made once per picture by FFT).
* **Edges**: rendered at ``supersample`` x the size and box-averaged, so
  edges are anti-aliased like a camera's rather than staircased.

Everything is numpy and vectorised over shapes (shapes are grouped by their
bounding-box size): a 192 x 256 picture takes a few milliseconds. The picture
is a pure function of ``(seed, index)``: ``dead_leaves(rng_for(seed, i), hw)``.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class DeadLeavesParams:
    """The model's knobs (defaults: the training pictures of ``synthetic:N``).

    r_min / r_max_frac: shape radii in output pixels, r_max = r_max_frac *
    min(H, W). alpha: the power-law exponent of the radius density.
    coverage: expected number of shapes over each pixel (sum of shape areas
    / picture area); the uncovered fraction is about exp(-coverage).
    palette: colours per picture. texture_weights: probability of flat,
    gradient, grating, noise textures. supersample: render factor for
    anti-aliased edges (1 = none).
    """

    r_min: float = 1.5
    r_max_frac: float = 0.4
    alpha: float = 3.0
    coverage: float = 4.0
    palette: int = 12
    texture_weights: tuple[float, float, float, float] = (0.25, 0.25, 0.2, 0.3)
    supersample: int = 2
    max_shapes: int = 20_000


def rng_for(seed: int, index: int) -> np.random.Generator:
    """The generator of picture ``index`` of the set drawn with ``seed``."""
    return np.random.default_rng([0xDEAD1EAF, int(seed), int(index)])


def _radii(rng, n: int, r_min: float, r_max: float, alpha: float) -> np.ndarray:
    """n radii from p(r) ~ r^-alpha on [r_min, r_max] (inverse CDF), float64."""
    u = rng.random(n)
    a = 1.0 - alpha
    return (r_min ** a + u * (r_max ** a - r_min ** a)) ** (1.0 / a)


def _mean_area(r_min: float, r_max: float, alpha: float) -> float:
    """E[pi r^2] under the power law (numerically: a fine grid)."""
    r = np.geomspace(r_min, r_max, 4096)
    p = r ** -alpha * r  # density on a log grid: p(r) dr = p(r) r dlog r
    return float(np.pi * np.sum(p * r ** 2) / np.sum(p))


def _noise_bank(rng, hw, n: int) -> np.ndarray:
    """n fields of 1/f^beta noise (beta in [1, 2.2]), zero mean, unit std: (n, H, W)."""
    h, w = hw
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    out = np.empty((n, h, w), np.float32)
    for i in range(n):
        beta = rng.uniform(1.0, 2.2)
        # a real white field's spectrum, shaped: 1/f^beta power = 1/f^(beta/2) amplitude
        spectrum = np.fft.rfft2(rng.standard_normal((h, w), np.float32)) / f ** (beta / 2)
        spectrum[0, 0] = 0.0
        field = np.fft.irfft2(spectrum, s=(h, w))
        out[i] = field / (field.std() + 1e-12)
    return out


def _palette(rng, n: int) -> np.ndarray:
    """n RGB colours in [0, 1], (n, 3): hue uniform, saturation mostly moderate."""
    from matplotlib.colors import hsv_to_rgb

    hsv = np.stack([rng.random(n), rng.beta(1.3, 2.2, n), rng.beta(2.2, 1.8, n)], axis=-1)
    return hsv_to_rgb(hsv)


def _inside(u, v, r, kind, aspect, phi):
    """Shape test in the shape's own frame (u, v): disc, ellipse or rectangle."""
    disc = u * u + v * v <= r * r
    ellipse = (u / r) ** 2 + (v / (aspect * r)) ** 2 <= 1.0
    rect = (np.abs(u) <= r * np.cos(phi)) & (np.abs(v) <= r * np.sin(phi))
    return np.where(kind == 0, disc, np.where(kind == 1, ellipse, rect))


def _owner_map(rng, hh: int, ww: int, radii: np.ndarray, scale: int,
               loop_above: int = 24) -> tuple[np.ndarray, dict]:
    """Index of the front-most shape at each pixel ((hh, ww) int32; n = background).

    Shapes with a bounding box of side <= ``loop_above`` are tested all at
    once per box size; the few larger ones one by one on their own box.
    """
    n = radii.size
    r = (radii * scale).astype(np.float32)
    cy = (rng.random(n) * (hh + 2 * r) - r).astype(np.float32)
    cx = (rng.random(n) * (ww + 2 * r) - r).astype(np.float32)
    kind = rng.integers(0, 3, n).astype(np.int8)        # 0 disc, 1 ellipse, 2 rectangle
    aspect = rng.uniform(0.25, 1.0, n).astype(np.float32)
    theta = rng.uniform(0.0, np.pi, n).astype(np.float32)
    phi = rng.uniform(0.2, np.pi / 2 - 0.2, n).astype(np.float32)
    cos, sin = np.cos(theta), np.sin(theta)
    owner = np.full((hh, ww), n, np.int32)
    half = np.ceil(r).astype(np.int64)
    iy, ix = np.floor(cy).astype(np.int64), np.floor(cx).astype(np.int64)
    side = 2 * half + 2
    flat_owner = owner.reshape(-1)
    for size in np.unique(side[side <= loop_above]):
        idx = np.flatnonzero(side == size)
        off = np.arange(size) - size // 2 + 1
        py = iy[idx, None, None] + off[None, :, None]
        px = ix[idx, None, None] + off[None, None, :]
        dy = (py - cy[idx, None, None]).astype(np.float32)
        dx = (px - cx[idx, None, None]).astype(np.float32)
        c, s = cos[idx, None, None], sin[idx, None, None]
        inside = _inside(dx * c + dy * s, dy * c - dx * s, r[idx, None, None],
                         kind[idx, None, None], aspect[idx, None, None], phi[idx, None, None])
        inside &= (py >= 0) & (py < hh) & (px >= 0) & (px < ww)
        leaf, yy, xx = np.nonzero(inside)
        np.minimum.at(flat_owner, py[leaf, yy, 0] * ww + px[leaf, 0, xx], idx[leaf].astype(np.int32))
    for i in np.flatnonzero(side > loop_above):
        y0, y1 = max(0, iy[i] - half[i]), min(hh, iy[i] + half[i] + 2)
        x0, x1 = max(0, ix[i] - half[i]), min(ww, ix[i] + half[i] + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = (np.arange(y0, y1, dtype=np.float32) - cy[i])[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) - cx[i])[None, :]
        inside = _inside(dx * cos[i] + dy * sin[i], dy * cos[i] - dx * sin[i], r[i], kind[i],
                         aspect[i], phi[i])
        box = owner[y0:y1, x0:x1]
        np.putmask(box, inside & (box > i), np.int32(i))
    return owner, dict(cy=cy, cx=cx, r=r)


def dead_leaves(rng: np.random.Generator, hw: tuple[int, int] = (384, 512),
                params: DeadLeavesParams = DeadLeavesParams()) -> np.ndarray:
    """One dead-leaves picture.

    Args:
      rng: numpy Generator (``rng_for(seed, index)`` for a reproducible set).
      hw: (H, W) of the picture, each >= 8.
      params: the model's knobs (:class:`DeadLeavesParams`).
    Returns:
      uint8 (H, W, 3) RGB.
    """
    h, w = int(hw[0]), int(hw[1])
    if h < 8 or w < 8:
        raise ValueError(f"dead-leaves pictures need at least 8 x 8 pixels, got {h} x {w}")
    s = max(1, int(params.supersample))
    hh, ww = h * s, w * s
    r_max = max(params.r_min * 1.5, params.r_max_frac * min(h, w))
    n = int(min(params.max_shapes,
                np.ceil(params.coverage * h * w / _mean_area(params.r_min, r_max, params.alpha))))
    radii = _radii(rng, n, params.r_min, r_max, params.alpha)
    owner, geo = _owner_map(rng, hh, ww, radii, s)

    # Per-shape appearance, one row per shape (the last row: the background leaf).
    m = n + 1
    palette = _palette(rng, params.palette)
    colour = palette[rng.integers(0, params.palette, m)]
    colour = np.clip(colour + rng.normal(0.0, 0.04, (m, 3)), 0.0, 1.0).astype(np.float32)
    weights = np.asarray(params.texture_weights, np.float64)
    texture = rng.choice(4, size=m, p=weights / weights.sum())
    texture[n] = 3                                       # the background is noise
    amplitude = rng.uniform(0.03, 0.25, m)
    angle = rng.uniform(0.0, np.pi, m)
    grad = rng.normal(0.0, 1.0, (m, 2))
    radius = np.append(geo["r"], max(hh, ww))
    freq = np.exp(rng.uniform(np.log(1 / 24), np.log(1 / 3), m)) / s
    # pattern(y, x) = a_y * y + a_x * x + b for gradients; the phase of a grating
    shape = np.zeros((m, 6), np.float32)
    centre_y, centre_x = np.append(geo["cy"], hh / 2), np.append(geo["cx"], ww / 2)
    shape[:, 0] = grad[:, 0] / radius
    shape[:, 1] = grad[:, 1] / radius
    shape[:, 2] = -(centre_y * shape[:, 0] + centre_x * shape[:, 1])
    shape[:, 3] = 2 * np.pi * freq * np.sin(angle)
    shape[:, 4] = 2 * np.pi * freq * np.cos(angle)
    shape[:, 5] = rng.uniform(0.0, 2 * np.pi, m)
    bank = _noise_bank(rng, (h, w), 2)
    which = rng.integers(0, bank.shape[0], m)
    shift = rng.integers(0, h * w, m)

    yy = np.arange(hh, dtype=np.float32)[:, None]
    xx = np.arange(ww, dtype=np.float32)[None, :]
    q = shape[owner]                                      # (hh, ww, 6)
    t = texture[owner]
    linear = q[..., 0] * yy + q[..., 1] * xx + q[..., 2]
    grating = np.sin(q[..., 3] * yy + q[..., 4] * xx + q[..., 5])
    noise_index = ((np.arange(hh)[:, None] // s) * w + np.arange(ww)[None, :] // s
                   + shift[owner]) % (h * w)
    noise = bank.reshape(bank.shape[0], -1)[which[owner], noise_index]
    pattern = np.select([t == 1, t == 2, t == 3], [linear, grating, noise], 0.0)
    gain = 1.0 + amplitude.astype(np.float32)[owner] * np.clip(pattern, -3.0, 3.0)
    image = colour[owner] * gain[..., None]
    if s > 1:
        image = image.reshape(h, s, w, s, 3).mean(axis=(1, 3))
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def dead_leaves_set(seed: int, indices, hw=(384, 512),
                    params: DeadLeavesParams = DeadLeavesParams()) -> np.ndarray:
    """Pictures ``indices`` of the set drawn with ``seed``: uint8 (len, H, W, 3)."""
    return np.stack([dead_leaves(rng_for(seed, i), hw, params) for i in indices])
