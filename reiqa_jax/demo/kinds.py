"""Which distortion kinds give the demo certain labels.

A distorted picture is labelled ``4 - level`` (the pristine one 5), so a kind
can be used only when its 5 levels are ordered by severity. ``SEVERITY``
states, for each of the 26 kinds, the parameter its op takes per level (the
tuple in ``reiqa_jax.augment``) and how severity grows with it; the tests
check every entry against the augment package and that every kind in
``KINDS`` is strictly monotone there and in the measured change of the
picture.

Not monotone (left out): ``mean_shift`` (+.15, +.08, 0, -.08, -.15: level 2
is the identity) and ``contrast_change`` (+.3, +.15, 0, -.4, -.6 contrast:
raised, then lowered). Monotone but left out: the colour-only kinds
(``color_diffusion``, ``color_saturation``, ``color_oversaturation``), which
leave the greyscale test photos (camera, coins) unchanged, so their labels
would be wrong there.

``KINDS`` (10): blur of three shapes, JPEG, two noises, brightness both ways,
pixelation and pasted colour blocks — one or two of each family of the
official 26, all of which change greyscale and colour photos alike.
"""
from __future__ import annotations

# kind -> (augment module, name of its per-level parameter tuple, severity of a value)
SEVERITY = {
    "gaussian_blur": ("blur", "GAUSSIAN_SIGMAS", "sigma"),
    "lens_blur": ("blur", "LENS_RADII", "radius"),
    "color_diffusion": ("color_ops", "DIFFUSION_LEVELS", "amount"),
    "color_shift": ("color_ops", "SHIFT_LEVELS", "amount"),
    "color_saturation": ("color_ops", "HSV_SATURATION_LEVELS", "|1 - factor|"),
    "color_oversaturation": ("color_ops", "LAB_SATURATION_LEVELS", "factor"),
    "jpeg": ("jpeg", "JPEG_QUALITIES", "-quality"),
    "white_noise": ("noise", "_WHITE_SIGMA", "sigma"),
    "white_noise_ycbcr": ("noise", "_YCBCR_SIGMA", "sigma"),
    "impulse_noise": ("noise", "_IMPULSE_PROB", "probability"),
    "multiplicative_noise": ("noise", "_MULTIPLICATIVE_SIGMA", "sigma"),
    "denoise": ("blur", "DENOISE_VARIANCES", "noise variance"),
    "brighten": ("tone", "BRIGHTEN_LEVELS", "amount"),
    "darken": ("tone", "DARKEN_LEVELS", "amount"),
    "mean_shift": ("tone", "MEAN_SHIFT_LEVELS", "|shift|"),
    "resize_bicubic": ("resize", "RESIZE_FACTORS", "factor"),
    "sharpen": ("sharpen", "SHARPEN_LEVELS", "amount"),
    "contrast_change": ("tone", "CONTRAST_LEVELS", "|amount|"),
    "color_block": ("spatial", "_BLOCK_COUNTS", "count"),
    "pixelate": ("resize", "PIXELATE_PARAMS", "amount"),
    "non_eccentricity": ("spatial", "_PATCH_COUNTS", "count"),
    "jitter": ("spatial", "_JITTER_SIGMA", "sigma"),
    "resize_bilinear": ("resize", "RESIZE_FACTORS", "factor"),
    "resize_nearest": ("resize", "NEAREST_FACTORS", "factor"),
    "resize_lanczos": ("resize", "RESIZE_FACTORS", "factor"),
    "motion_blur": ("blur", "MOTION_LENGTHS", "length"),
}

KINDS = ("gaussian_blur", "lens_blur", "motion_blur", "jpeg", "white_noise", "impulse_noise",
         "brighten", "darken", "pixelate", "color_block")


def level_parameters(kind: str) -> tuple[float, ...]:
    """The parameter of ``kind`` at levels 0..4, read from ``reiqa_jax.augment``."""
    from reiqa_jax.augment import blur, color_ops, jpeg, noise, resize, sharpen, spatial, tone

    modules = {"blur": blur, "color_ops": color_ops, "jpeg": jpeg, "noise": noise,
               "resize": resize, "sharpen": sharpen, "spatial": spatial, "tone": tone}
    module, name, _ = SEVERITY[kind]
    return tuple(float(v) for v in getattr(modules[module], name))


def severities(kind: str) -> tuple[float, ...]:
    """Severity of ``kind`` at levels 0..4 (``SEVERITY``'s rule on its parameters)."""
    rule = SEVERITY[kind][2]
    values = level_parameters(kind)
    if rule.startswith("-"):
        return tuple(-v for v in values)
    if rule == "|1 - factor|":
        return tuple(abs(1.0 - v) for v in values)
    if rule.startswith("|"):
        return tuple(abs(v) for v in values)
    return values


def is_monotone(kind: str) -> bool:
    """Severity strictly increases with the level."""
    s = severities(kind)
    return all(a < b for a, b in zip(s, s[1:]))
