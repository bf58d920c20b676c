"""MoCo-v2 "B" content augmentation: parameter statistics and op definitions
(torchvision's, checked against PIL's ImageEnhance where it is the source)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageEnhance
from skimage import data

from reiqa_jax.augment import content
from reiqa_jax.data import tiles
from augment_testing import count_compiles

N = 4000


def _binom_ok(count, n, p, z=5.0):
    return abs(count - n * p) <= z * np.sqrt(n * p * (1 - p))


def _torchvision_boxes(rng, h, w, n):
    """RandomResizedCrop.get_params as documented: 10 tries, then fallback."""
    out = []
    for _ in range(n):
        for _ in range(10):
            a = h * w * rng.uniform(0.2, 1.0)
            r = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = int(round(np.sqrt(a * r))), int(round(np.sqrt(a / r)))
            if 0 < cw <= w and 0 < ch <= h:
                out.append((rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1), ch, cw))
                break
        else:
            out.append((0, 0, h, w))
    return np.array(out)


@pytest.fixture(scope="module")
def params():
    hw = jnp.array([300, 451], jnp.int32)  # chelsea
    return jax.jit(jax.vmap(content.sample_content_params, in_axes=(0, None)))(
        jax.random.split(jax.random.key(0), N), hw), (300, 451)


def test_crop_box_statistics(params):
    p, (h, w) = params
    box = np.asarray(p["box"])
    top, left, bh, bw = box.T
    assert np.all(top >= 0) and np.all(left >= 0)
    assert np.all(top + bh <= h) and np.all(left + bw <= w)
    frac = bh * bw / (h * w)
    ratio = bw / bh
    # Integer rounding of sides moves area/ratio a little off the nominal range.
    assert frac.min() >= 0.19 and frac.max() <= 1.0
    # The ratio cap makes the largest box 300 x 400 = 0.887 of the picture.
    assert frac.min() < 0.21 and frac.max() > 0.85
    assert ratio.min() >= 0.74 and ratio.max() <= 1.35
    # Same distribution as torchvision's get_params (numpy re-statement).
    ref = _torchvision_boxes(np.random.default_rng(0), h, w, N)
    ref_frac = ref[:, 2] * ref[:, 3] / (h * w)
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(frac, q) - np.quantile(ref_frac, q)) < 0.03, q
    assert abs(frac.mean() - ref_frac.mean()) < 0.02


def test_fallback_box_for_extreme_aspect():
    # A 40 x 600 strip: no candidate fits the ratio range -> centre crop with
    # the width cut to round(h * 4/3).
    box = content.random_resized_crop_box(jax.random.key(0), jnp.array([40, 600]))
    assert tuple(np.asarray(box)) == (0, (600 - 53) // 2, 40, 53)


def test_flip_jitter_gray_blur_rates(params):
    p, _ = params
    for name, prob in [("flip", 0.5), ("jitter", 0.8), ("gray", 0.2), ("blur", 0.5)]:
        assert _binom_ok(int(np.sum(p[name])), N, prob), name
    f = np.asarray(p["factors"])
    assert f[:, :3].min() >= 0.6 and f[:, :3].max() <= 1.4
    assert f[:, 3].min() >= -0.1 and f[:, 3].max() <= 0.1
    s = np.asarray(p["sigma"])
    assert s.min() >= 0.1 and s.max() <= 2.0
    order = np.asarray(p["order"])
    assert np.all(np.sort(order, axis=1) == np.arange(4))
    # every op comes first about a quarter of the time
    firsts = np.bincount(order[:, 0], minlength=4)
    assert all(_binom_ok(c, N, 0.25) for c in firsts)


@pytest.fixture(scope="module")
def views():
    imgs = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    canv = [tiles.content_canvas(i) for i in imgs]
    px = np.stack([c["pixels"] for c in canv])
    hw = np.stack([c["valid_hw"] for c in canv])
    with count_compiles() as compiles:
        outs = [content.content_augment(jax.random.key(s), px, hw) for s in range(4)]
    return px, hw, outs, compiles


def test_content_views_normalised_and_grey(views):
    _, _, outs, compiles = views
    mean = np.array(content.IMAGENET_MEAN)
    std = np.array(content.IMAGENET_STD)
    for v, p in outs:
        v = np.asarray(v)
        assert v.shape == (4, 224, 224, 3) and np.all(np.isfinite(v))
        raw = v * std + mean
        assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
        for i in np.nonzero(np.asarray(p["gray"]))[0]:
            np.testing.assert_allclose(raw[i, ..., 0], raw[i, ..., 1], atol=1e-5)
            np.testing.assert_allclose(raw[i, ..., 1], raw[i, ..., 2], atol=1e-5)
    assert compiles["content_augment"] == 1, compiles  # one program for every key


def _plain(box, flip=False):
    return dict(box=jnp.asarray(box, jnp.int32), flip=jnp.bool_(flip),
                jitter=jnp.bool_(False), factors=jnp.ones(4), order=jnp.arange(4),
                gray=jnp.bool_(False), blur=jnp.bool_(False), sigma=jnp.float32(1.0))


def test_resized_crop_and_flip_match_pil():
    img = np.ascontiguousarray(data.coffee()[::2, ::2])  # 200 x 300
    box = (17, 51, 150, 130)
    x = jnp.asarray(img, jnp.float32) / 255
    out = np.asarray(content.apply_content_params(x, _plain(box)))
    raw = out * content.IMAGENET_STD + np.array(content.IMAGENET_MEAN)
    ref = np.asarray(Image.fromarray(img).resize(
        (224, 224), Image.BILINEAR, box=(51, 17, 51 + 130, 17 + 150)), np.float32) / 255
    inner = (slice(2, -2), slice(2, -2))  # the border ring may see outside the box
    assert np.abs(raw[inner] - ref[inner]).max() < 2.5 / 255
    flipped = np.asarray(content.apply_content_params(x, _plain(box, True)))
    np.testing.assert_allclose(flipped, out[:, ::-1], atol=1e-6)


@pytest.mark.parametrize("name,enh", [("brightness", ImageEnhance.Brightness),
                                      ("contrast", ImageEnhance.Contrast),
                                      ("saturation", ImageEnhance.Color)])
def test_jitter_ops_match_pil_enhance(name, enh):
    img = data.astronaut()[::4, ::4]
    x = jnp.asarray(img, jnp.float32) / 255
    fn = getattr(content, f"adjust_{name}")
    for f in (0.6, 1.0, 1.4):
        ours = np.asarray(fn(x, f))
        ref = np.asarray(enh(Image.fromarray(img)).enhance(f), np.float32) / 255
        assert np.abs(ours - ref).max() <= 2.01 / 255, (name, f)


def test_hue_close_to_pil_path():
    img = data.coffee()[::4, ::4]
    x = jnp.asarray(img, jnp.float32) / 255
    for d in (-0.1, 0.05):
        ours = np.asarray(content.adjust_hue(x, d))
        hsv = np.array(Image.fromarray(img).convert("HSV"))
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(d * 255)) % 256
        ref = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), np.float32) / 255
        # PIL quantises hue to 1/256 of the circle and works in uint8.
        assert np.abs(ours - ref).mean() < 2.0 / 255


def test_blur_is_normalised_gaussian():
    img = jnp.asarray(data.chelsea()[::2, ::2], jnp.float32) / 255
    for s in (0.1, 1.0, 2.0):
        out = np.asarray(content.separable_gaussian_blur(img, s))
        np.testing.assert_allclose(out.mean(axis=(0, 1)), np.asarray(img).mean(axis=(0, 1)),
                                   atol=2e-3)
    # stronger blur removes more high-frequency energy
    def hf(a):
        return np.abs(np.diff(np.asarray(a), axis=1)).mean()
    blur = content.separable_gaussian_blur
    assert hf(blur(img, 2.0)) < hf(blur(img, 0.5)) < hf(img)


def test_content_canvas_keeps_whole_picture():
    big = np.concatenate([data.coffee(), data.coffee()], axis=1)  # 400 x 1200
    c = tiles.content_canvas(big, (512, 512))
    assert c["pixels"].shape == (512, 512, 3)
    h, w = c["valid_hw"]
    assert w == 512 and abs(h - round(400 * 512 / 1200)) <= 1  # aspect kept
    small = tiles.content_canvas(data.chelsea(), (512, 512))
    np.testing.assert_array_equal(small["pixels"][:300, :451], data.chelsea())
    assert tuple(small["valid_hw"]) == (300, 451)
