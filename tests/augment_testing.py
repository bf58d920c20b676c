"""Helpers shared by the augmentation tests: PSNR and uint8 <-> unit-float conversions."""

import jax.numpy as jnp
import numpy as np


def psnr(a, b):
    """PSNR in dB between two images in 0-255 units (inf when identical)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255.0**2 / mse)


def to_u8(x):
    """[0, 1] floats (numpy or jax) -> uint8, rounding to the nearest level."""
    return np.round(np.asarray(x, np.float64) * 255.0).astype(np.uint8)


def to_f32(u8):
    """uint8 pixels -> float32 jax array in [0, 1]."""
    return jnp.asarray(u8, jnp.float32) / 255.0
