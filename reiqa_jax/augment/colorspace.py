"""Colour-space conversions with scikit-image's conventions, in JAX.

The official distortions (``datasets/iqa_distortions.py``) convert with
``skimage.color``; these functions reproduce those conversions formula for
formula (same constants, same thresholds, same tie-breaking and clipping) so
that an op built on them matches the official one.

All functions are pure, jit/vmap friendly and act on the last axis:
``(..., 3)`` float arrays in, ``(..., 3)`` float arrays of the same dtype out
(``rgb_to_gray`` returns ``(...)``).

Units (skimage's):
  * RGB: float, nominally [0, 1]. skimage does *not* rescale float input, so
    RGB values outside [0, 1] (e.g. 0-255 floats, as the official sharpen
    passes) go through the same formulas; these functions do the same.
  * Lab: L in [0, 100], a/b roughly [-128, 127]; sRGB, D65, 2-degree observer.
  * HSV: all three channels in [0, 1].
  * YCbCr: ITU-R BT.601 studio swing, Y in [16, 235], Cb/Cr in [16, 240].
"""

import jax.numpy as jnp
import numpy as np

# sRGB (linear) -> XYZ, skimage.color.colorconv.xyz_from_rgb.
_XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
# skimage inverts the matrix in float64; keep that exact inverse.
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)

# D65 / 2-degree white point as skimage uses it (its 'lab_ref_white').
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])

_YCBCR_FROM_RGB = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
_RGB_FROM_YCBCR = np.linalg.inv(_YCBCR_FROM_RGB)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])

# MATLAB rgb2gray weights, which the official colour shift uses
# (not skimage's rgb2gray weights 0.2125/0.7154/0.0721).
GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])


def _matmul3(x, m):
    """``x @ m.T`` over the last axis, m a float64 (k, 3) NumPy constant.

    Written as k weighted sums of the three channels rather than a dot:
    XLA's CPU dot with a contraction of 3 is ~5x slower than the fused
    elementwise form, and on GPUs a float32 dot may run in TF32 by default,
    which would cost ~3 significant digits.
    """
    c0, c1, c2 = x[..., 0], x[..., 1], x[..., 2]
    rows = [float(r[0]) * c0 + float(r[1]) * c1 + float(r[2]) * c2 for r in m]
    return jnp.stack(rows, axis=-1)


def _pow_pos(x, p):
    """x ** p for x > 0 as exp(p log x): same float32 accuracy, and XLA's
    CPU pow with a non-integer exponent is ~6x slower (it gets duplicated
    into every fused consumer, so this matters)."""
    return jnp.exp(p * jnp.log(x))


def rgb_to_xyz(rgb):
    """sRGB -> CIE XYZ (skimage ``rgb2xyz``). rgb: (..., 3) float."""
    rgb = jnp.asarray(rgb)
    # Decode the sRGB gamma; the branch that is not selected is evaluated
    # on a safe value so no NaN/inf appears (also keeps gradients clean).
    high = rgb > 0.04045
    safe = jnp.where(high, rgb, 1.0)
    lin = jnp.where(high, _pow_pos((safe + 0.055) / 1.055, 2.4), rgb / 12.92)
    return _matmul3(lin, _XYZ_FROM_RGB)


def xyz_to_lab(xyz):
    """CIE XYZ -> CIE Lab, D65/2 white (skimage ``xyz2lab``). (..., 3) float."""
    xyz = jnp.asarray(xyz)
    t = xyz / jnp.asarray(_D65_WHITE, dtype=xyz.dtype)
    high = t > 0.008856
    # exp(log / 3) on the positive branch: float32-accurate and several
    # times faster than jnp.cbrt on CPU.
    f = jnp.where(high, _pow_pos(jnp.where(high, t, 1.0), 1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    x, y, z = f[..., 0], f[..., 1], f[..., 2]
    return jnp.stack([116.0 * y - 16.0, 500.0 * (x - y), 200.0 * (y - z)], axis=-1)


def lab_to_xyz(lab):
    """CIE Lab -> XYZ (skimage ``lab2xyz``): negative Z clipped to 0. (..., 3) float."""
    lab = jnp.asarray(lab)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    y = (L + 16.0) / 116.0
    x = a / 500.0 + y
    # skimage zeroes negative z (with a warning) before the cube.
    z = jnp.maximum(y - b / 200.0, 0.0)
    f = jnp.stack([x, y, z], axis=-1)
    t = jnp.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787)
    return t * jnp.asarray(_D65_WHITE, dtype=lab.dtype)


def xyz_to_rgb(xyz):
    """XYZ -> sRGB (skimage ``xyz2rgb``), clipped to [0, 1]. (..., 3) float."""
    lin = _matmul3(jnp.asarray(xyz), _RGB_FROM_XYZ)
    high = lin > 0.0031308
    safe = jnp.where(high, lin, 1.0)
    rgb = jnp.where(high, 1.055 * _pow_pos(safe, 1.0 / 2.4) - 0.055, lin * 12.92)
    return jnp.clip(rgb, 0.0, 1.0)


def rgb_to_lab(rgb):
    """sRGB -> CIE Lab (skimage ``rgb2lab``, D65, 2-degree).

    rgb: (..., 3) float in skimage units ([0, 1] nominal; not rescaled).
    Returns (..., 3) same dtype: L in [0, 100] for in-range input, a, b.
    skimage gives the same Lab for a uint8 image and for that image / 255
    (it converts uint8 with ``img_as_float``), so call this with u8 / 255.
    """
    return xyz_to_lab(rgb_to_xyz(rgb))


def lab_to_rgb(lab):
    """CIE Lab -> sRGB (skimage ``lab2rgb``), output clipped to [0, 1].

    lab: (..., 3) float. Negative Z (very large +b) is clipped to 0 and the
    final RGB is clipped to [0, 1], as skimage does.
    """
    return xyz_to_rgb(lab_to_xyz(lab))


def rgb_to_hsv(rgb):
    """RGB -> HSV (skimage ``rgb2hsv``). rgb: (..., 3) float in [0, 1].

    Returns (..., 3): H in [0, 1), S = delta / V (0 where delta == 0), V = max.
    Ties follow skimage, which assigns red, then green, then blue, each
    overwriting the previous: blue wins over green wins over red.
    """
    rgb = jnp.asarray(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = jnp.max(rgb, axis=-1)
    delta = v - jnp.min(rgb, axis=-1)
    flat = delta == 0.0
    safe_delta = jnp.where(flat, 1.0, delta)
    safe_v = jnp.where(flat, 1.0, v)  # v == 0 implies delta == 0
    s = jnp.where(flat, 0.0, delta / safe_v)
    h_r = (g - b) / safe_delta
    h_g = 2.0 + (b - r) / safe_delta
    h_b = 4.0 + (r - g) / safe_delta
    h = jnp.where(b == v, h_b, jnp.where(g == v, h_g, h_r))
    h = jnp.where(flat, 0.0, jnp.mod(h / 6.0, 1.0))
    return jnp.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv):
    """HSV -> RGB (skimage ``hsv2rgb``). hsv: (..., 3) float, H in [0, 1].

    S outside [0, 1] is allowed (the official "saturation" op uses negative
    S); the formulas are applied as is, output not clipped.
    """
    hsv = jnp.asarray(hsv)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hi = jnp.floor(h * 6.0)
    f = h * 6.0 - hi
    p = v * (1.0 - s)
    q = v * (1.0 - f * s)
    t = v * (1.0 - (1.0 - f) * s)
    sector = jnp.mod(hi.astype(jnp.int32), 6)
    choices = jnp.stack(
        [
            jnp.stack([v, t, p], axis=-1),
            jnp.stack([q, v, p], axis=-1),
            jnp.stack([p, v, t], axis=-1),
            jnp.stack([p, q, v], axis=-1),
            jnp.stack([t, p, v], axis=-1),
            jnp.stack([v, p, q], axis=-1),
        ],
        axis=0,
    )
    idx = jnp.broadcast_to(sector[None, ..., None], (1,) + hsv.shape)
    return jnp.take_along_axis(choices, idx, axis=0)[0]


def rgb_to_ycbcr(rgb):
    """RGB in [0, 1] -> YCbCr in skimage units (Y 16-235, Cb/Cr 16-240).

    Equals skimage ``rgb2ycbcr(u8)`` for ``rgb = u8 / 255``. (..., 3) float.
    """
    rgb = jnp.asarray(rgb)
    return _matmul3(rgb, _YCBCR_FROM_RGB) + jnp.asarray(_YCBCR_OFFSET, dtype=rgb.dtype)


def ycbcr_to_rgb(ycbcr):
    """YCbCr (skimage units) -> RGB in [0, 1] nominal, not clipped (skimage
    ``ycbcr2rgb``). (..., 3) float."""
    ycbcr = jnp.asarray(ycbcr)
    return _matmul3(ycbcr - jnp.asarray(_YCBCR_OFFSET, dtype=ycbcr.dtype), _RGB_FROM_YCBCR)


def rgb_to_gray(rgb):
    """Luma with the MATLAB ``rgb2gray`` weights the official colour shift
    uses (0.2989 R + 0.5870 G + 0.1140 B). rgb: (..., 3) -> (...)."""
    rgb = jnp.asarray(rgb)
    return _matmul3(rgb, GRAY_WEIGHTS[None, :])[..., 0]
