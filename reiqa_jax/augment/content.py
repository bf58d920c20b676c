"""Content-encoder augmentation: MoCo-v2 recipe "B" of the official code.

Official (``datasets/util.py build_transforms('B')``, crop scale 0.2 for the
MoCo queue), in this order, on PIL images:

  RandomResizedCrop(224, scale=(0.2, 1), ratio=(3/4, 4/3))   # 10 tries + fallback
  RandomHorizontalFlip(p=0.5)
  RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)      # 4 ops, random order
  RandomGrayscale(p=0.2)
  RandomApply([GaussianBlur2], p=0.5)                        # PIL blur, sigma U(0.1, 2)
  ToTensor(); Normalize(ImageNet mean, std)

Here: float32 throughout, per-sample parameters drawn on device
(``sample_content_params``) and applied with pure jitted ops
(``apply_content_params``); ``content_augment`` does both for a batch.

Where this differs from torchvision-on-PIL (all small):
* PIL quantises to uint8 after every step; we stay in float (clipped to
  [0, 1] after each jitter op, as torchvision's tensor path does).
* Resized crop: ``jax.image.scale_and_translate`` (triangle kernel,
  antialiased when shrinking, like PIL's bilinear resize) on the whole canvas,
  so the outermost output pixels may mix in the 1-2 source pixels just
  outside the crop box, which PIL (crop, then resize) does not see.
* Grayscale / saturation / contrast use the luma weights 0.2989, 0.587, 0.114
  (torchvision's tensor path, ``dm_pix.rgb_to_grayscale``); PIL's "L" uses
  0.299, 0.587, 0.114 with integer rounding.
* Hue: ``dm_pix.adjust_hue`` = torchvision's tensor definition
  (h + delta) mod 1 in float HSV; torchvision-on-PIL shifts a uint8 hue by
  int(delta * 255).
* Blur: an exact Gaussian (17 taps, sigma traced, edge-replicating border);
  PIL's ``GaussianBlur(radius=sigma)`` approximates a Gaussian of that sigma
  with three box blurs.
* dm-pix is *not* used for brightness/contrast/saturation: its
  ``adjust_brightness`` is additive (tf), ``adjust_contrast`` blends with the
  per-channel mean (tf) and ``adjust_saturation`` scales HSV saturation;
  torchvision multiplies, blends with the grey mean, and blends with the grey
  image respectively.
"""

from __future__ import annotations

import functools
import math

import dm_pix as pix
import jax
import jax.numpy as jnp

from reiqa_jax.normalize import IMAGENET_MEAN, IMAGENET_STD, to_unit_float

OUT_SIZE = 224
SCALE = (0.2, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
TRIES = 10
JITTER = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
P_JITTER, P_GRAY, P_BLUR, P_FLIP = 0.8, 0.2, 0.5, 0.5
SIGMA = (0.1, 2.0)
BLUR_RADIUS = 8  # 4 sigma_max: the Gaussian's tails beyond are < 3e-4


def _round_half_even(x):
    return jnp.round(x).astype(jnp.int32)  # jnp.round ties to even, as Python


def random_resized_crop_box(key, valid_hw):
    """torchvision ``RandomResizedCrop.get_params`` (scale 0.2-1, ratio 3/4-4/3).

    Ten candidate boxes are drawn at once; the first that fits wins, else the
    centre-crop fallback (full picture clamped to the ratio range).

    Args:
      key: PRNG key; valid_hw: int32 (2,) picture size (h, w).
    Returns:
      int32 (4,) = (top, left, height, width) inside the picture.
    """
    h, w = valid_hw[0], valid_hw[1]
    hf, wf = h.astype(jnp.float32), w.astype(jnp.float32)
    area = hf * wf
    ka, kr, kt, kl = jax.random.split(key, 4)
    target = area * jax.random.uniform(ka, (TRIES,), minval=SCALE[0], maxval=SCALE[1])
    aspect = jnp.exp(jax.random.uniform(kr, (TRIES,), minval=math.log(RATIO[0]),
                                        maxval=math.log(RATIO[1])))
    cw = _round_half_even(jnp.sqrt(target * aspect))
    ch = _round_half_even(jnp.sqrt(target / aspect))
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = jnp.argmax(ok)
    # Fallback: whole picture, cut down to the nearest allowed ratio.
    in_ratio = wf / hf
    fw = jnp.where(in_ratio < RATIO[0], w,
                   jnp.where(in_ratio > RATIO[1], _round_half_even(hf * RATIO[1]), w))
    fh = jnp.where(in_ratio < RATIO[0], _round_half_even(wf / RATIO[0]), h)
    found = ok.any()
    bh = jnp.where(found, ch[first], fh)
    bw = jnp.where(found, cw[first], fw)
    u_t = jax.random.uniform(kt, ())
    u_l = jax.random.uniform(kl, ())
    # randint(0, h - bh + 1) from one uniform; fallback centres.
    top = jnp.where(found, jnp.floor(u_t * (h - bh + 1)).astype(jnp.int32), (h - bh) // 2)
    left = jnp.where(found, jnp.floor(u_l * (w - bw + 1)).astype(jnp.int32), (w - bw) // 2)
    return jnp.stack([top, left, bh, bw]).astype(jnp.int32)


def sample_content_params(key, valid_hw):
    """Per-picture random parameters of recipe B.

    Args:
      key: PRNG key; valid_hw: int32 (2,).
    Returns:
      dict: box int32 (4,); flip, jitter, gray, blur: bool; factors float32 (4,)
      (brightness, contrast, saturation in [0.6, 1.4], hue in [-0.1, 0.1]);
      order int32 (4,) (permutation of 0..3, torchvision's ``randperm(4)``);
      sigma float32 in [0.1, 2].
    """
    k = jax.random.split(key, 8)
    b, c, s, hue = JITTER
    lo = jnp.array([1 - b, 1 - c, 1 - s, -hue], jnp.float32)
    hi = jnp.array([1 + b, 1 + c, 1 + s, hue], jnp.float32)
    return dict(
        box=random_resized_crop_box(k[0], jnp.asarray(valid_hw, jnp.int32)),
        flip=jax.random.uniform(k[1], ()) < P_FLIP,
        jitter=jax.random.uniform(k[2], ()) < P_JITTER,
        factors=jax.random.uniform(k[3], (4,), minval=lo, maxval=hi),
        order=jax.random.permutation(k[4], 4).astype(jnp.int32),
        gray=jax.random.uniform(k[5], ()) < P_GRAY,
        blur=jax.random.uniform(k[6], ()) < P_BLUR,
        sigma=jax.random.uniform(k[7], (), minval=SIGMA[0], maxval=SIGMA[1]),
    )


def resized_crop(image, box, size: int = OUT_SIZE):
    """Crop ``box`` = (top, left, h, w) of (H, W, 3) float image, resize to
    (size, size, 3) with an antialiased triangle filter (traced box)."""
    top, left, bh, bw = [box[i].astype(jnp.float32) for i in range(4)]
    scale = jnp.stack([size / bh, size / bw])
    trans = jnp.stack([-top * scale[0], -left * scale[1]])
    return jax.image.scale_and_translate(image, (size, size, image.shape[2]), (0, 1),
                                         scale, trans, method="linear", antialias=True)


def _gray(img):
    return pix.rgb_to_grayscale(img)  # (..., 1), torchvision tensor weights


def adjust_brightness(img, f):
    """torchvision: blend with black = clip(f * img)."""
    return jnp.clip(img * f, 0.0, 1.0)


def adjust_contrast(img, f):
    """torchvision: blend with the mean of the grey image (one scalar)."""
    m = jnp.mean(_gray(img))
    return jnp.clip(f * img + (1.0 - f) * m, 0.0, 1.0)


def adjust_saturation(img, f):
    """torchvision: blend with the grey image."""
    return jnp.clip(f * img + (1.0 - f) * _gray(img), 0.0, 1.0)


def adjust_hue(img, delta):
    """torchvision tensor definition: hue + delta mod 1 (dm-pix)."""
    return jnp.clip(pix.adjust_hue(img, delta), 0.0, 1.0)


def color_jitter(img, factors, order):
    """The four jitter ops in ``order`` (a permutation of 0..3 = brightness,
    contrast, saturation, hue). Under vmap each step evaluates all four ops
    and selects (cheap elementwise work at 224 x 224)."""
    ops = (lambda x: adjust_brightness(x, factors[0]),
           lambda x: adjust_contrast(x, factors[1]),
           lambda x: adjust_saturation(x, factors[2]),
           lambda x: adjust_hue(x, factors[3]))
    for step in range(4):
        img = jax.lax.switch(order[step], ops, img)
    return img


def separable_gaussian_blur(img, sigma):
    """MoCo-v2's blur: a separable Gaussian, 2 * BLUR_RADIUS + 1 taps, edge-replicated border."""
    r = BLUR_RADIUS
    t = jnp.arange(-r, r + 1, dtype=jnp.float32)
    w = jnp.exp(-0.5 * (t / sigma) ** 2)
    w = w / jnp.sum(w)
    h, wd = img.shape[:2]
    p = jnp.pad(img, ((r, r), (0, 0), (0, 0)), mode="edge")
    img = sum(w[i] * p[i:i + h] for i in range(2 * r + 1))
    p = jnp.pad(img, ((0, 0), (r, r), (0, 0)), mode="edge")
    return sum(w[i] * p[:, i:i + wd] for i in range(2 * r + 1))


def normalize(img):
    mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
    std = jnp.asarray(IMAGENET_STD, jnp.float32)
    return (img - mean) / std


def apply_content_params(image, params, size: int = OUT_SIZE):
    """Apply recipe B with fixed parameters to one picture.

    Args:
      image: float32 (H, W, 3) in [0, 1] (a canvas; the box lies inside the
        valid picture).
      params: ``sample_content_params`` output.
    Returns:
      float32 (size, size, 3), ImageNet-normalised.
    """
    x = jnp.clip(resized_crop(image, params["box"], size), 0.0, 1.0)
    x = jnp.where(params["flip"], x[:, ::-1], x)
    x = jnp.where(params["jitter"], color_jitter(x, params["factors"], params["order"]), x)
    x = jnp.where(params["gray"], jnp.broadcast_to(_gray(x), x.shape), x)
    x = jnp.where(params["blur"], separable_gaussian_blur(x, params["sigma"]), x)
    return normalize(x)


@functools.partial(jax.jit, static_argnames=("size",))
def content_augment(key, images, valid_hw=None, size: int = OUT_SIZE):
    """One MoCo-v2 "B" view per picture (call twice for a query/key pair).

    Args:
      key: PRNG key.
      images: (B, H, W, 3) uint8 or float32 in [0, 1] canvases.
      valid_hw: optional int32 (B, 2) picture sizes (default full canvas).
      size: output side (static; 224 in the recipe).
    Returns:
      views float32 (B, size, size, 3) normalised, and the params dict (batched).
    """
    images = to_unit_float(images)
    b, h, w, _ = images.shape
    if valid_hw is None:
        valid_hw = jnp.broadcast_to(jnp.array([h, w], jnp.int32), (b, 2))
    params = jax.vmap(sample_content_params)(jax.random.split(key, b), valid_hw)
    apply = functools.partial(apply_content_params, size=size)
    return jax.vmap(apply)(images, params), params
