"""crop_swap 'official' and 'clean' against a PyTorch restatement of the
official dataset.py crop lines (aliased views, in-place swap) on real photos
of several sizes, each whole in a larger canvas (as the trainer hands them
to the device)."""

import jax
import numpy as np
import pytest
import torch
from skimage import data

from reference_dataset_torch import centre_origin, official_views
from reiqa_jax.augment import quality_views
from reiqa_jax.augment.quality_views import QualityViewConfig

P = 160
N_AUG = 3  # 4 versions: 2 swapped at scale 1, 2 at scale 2


def _versions(picture):
    """(h, w, 3) uint8 -> (4, h, w, 3) float32: the picture and three
    deterministic variants (stand-ins for distortions)."""
    x = picture.astype(np.float32) / 255.0
    return np.stack([x, x * 0.8, 1.0 - x, x * x])


CANVAS = (768, 1024)  # one canvas for every size: one compiled program per mode


def _stack_in_canvas(picture, seed=0):
    """Our storage: the versions at the top-left of a canvas, junk around them."""
    v = _versions(picture)
    h, w = v.shape[1:3]
    junk = np.random.default_rng(seed).random((4,) + CANVAS + (3,)).astype(np.float32)
    junk[:, :h, :w] = v
    return junk, (h, w)


@pytest.fixture(scope="module")
def run_views():
    fns = {}

    def run(mode, key, stack, hw, transposed=False):
        if mode not in fns:
            cfg = QualityViewConfig(n_aug=N_AUG, crop_swap=mode)
            fns[mode] = jax.jit(lambda k, s, v, t: quality_views.views_from_stack(k, s, v, t, cfg))
        return [np.asarray(a) for a in fns[mode](key, stack, np.asarray(hw, np.int32),
                                                  np.bool_(transposed))]
    return run


def _photo(name, h, w, top=0, left=0):
    """An h x w crop of a real photo (scikit-image's bundled ones)."""
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    crop = np.ascontiguousarray(image[top:top + h, left:left + w, :3])
    assert crop.shape == (h, w, 3), (name, crop.shape)
    return crop


PICTURES = {
    # KADIS-700k's size: the crop region is always a view of the picture
    "astronaut_384x512": lambda: _photo("astronaut", 384, 512, 64, 0),
    # COCO's usual sizes, landscape and portrait: at scale 2 (320 x 240)
    # the crop region is larger than the picture (zero-padded centre crop)
    "motorcycle_480x640": lambda: _photo("motorcycle", 480, 640, 10, 50),
    "hubble_640x480": lambda: _photo("hubble_deep_field", 640, 480, 100, 300),
    # a large picture: random crops at both scales
    "retina_768x1024": lambda: _photo("retina", 768, 1024, 300, 200),
    # 280 rows: S = 160 + max(y, x) is 272..303, so a view or a padded copy
    "chelsea_280x451": lambda: _photo("chelsea", 280, 451),
}


@pytest.mark.parametrize("mode", ["official", "clean"])
def test_crop_swap_matches_pytorch_restatement(mode, run_views):
    """Whole pictures of several sizes in one canvas: the scale-1 and scale-2
    crops (and the official swap's writes into the stack scale 2 is made
    from) equal the official dataset.py lines run on the picture alone."""
    paths = set()
    for name, make in PICTURES.items():
        picture = make()
        stack, hw = _stack_in_canvas(picture, seed=len(name))
        for seed in range(3):
            views, offsets, origins = run_views(mode, jax.random.key(seed), stack, hw)
            geometry = []
            for scale in range(2):
                y, x = (int(v) for v in offsets[scale])
                top, left = (int(v) for v in origins[scale])
                ph, pw = picture.shape[:2]
                if scale == 1:
                    ph, pw = ph // 2, pw // 2
                size = P + max(y, x)
                if ph < size or pw < size:  # CenterCrop: origin is not random
                    assert (top, left) == (centre_origin(ph, size), centre_origin(pw, size))
                    paths.add("centre" if scale == 0 else "centre2")
                else:
                    assert 0 <= top <= ph - size and 0 <= left <= pw - size
                    paths.add("random" if scale == 0 else "random2")
                geometry.append((y, x, top, left))
            chunk1 = torch.from_numpy(_versions(picture)).permute(0, 3, 1, 2).contiguous()
            ref = official_views(chunk1, P, N_AUG, geometry, mode).permute(0, 2, 3, 1).numpy()
            assert views.shape == ref.shape == (8, P, P, 6)
            # Scale 1 is pure float32 add/sub on the same values: identical.
            np.testing.assert_array_equal(views[:4], ref[:4], err_msg=f"{name} seed {seed}")
            # Scale 2 goes through bicubic resampling (different summation order).
            np.testing.assert_allclose(views[4:], ref[4:], atol=1e-5, err_msg=f"{name} {seed}")
            if mode == "official":
                # The "swap" mixed pixels: values outside [0, 1] where crops overlap.
                assert views[:2].min() < 0 or views[:2].max() > 1
            else:
                assert views[:4].min() >= 0 and views[:4].max() <= 1
    assert paths == {"random", "centre", "random2", "centre2"}, paths


def test_scale2_of_the_whole_picture_not_of_a_window(run_views):
    # 640 x 480: scale 2 is 320 x 240 of the whole picture, so the crop
    # region (272-303) is zero-padded by 16-32 rows; a 384 x 512 window
    # would halve to 192 x 256 and pad 40-56 rows and 8-24 columns.
    picture = PICTURES["motorcycle_480x640"]()
    zeros = {}
    for name, pic in (("whole", picture), ("window", picture[:384, :512])):
        stack, hw = _stack_in_canvas(pic)
        zeros[name] = np.mean([np.mean(np.all(run_views("clean", jax.random.key(seed), stack, hw)[0]
                                              [4:, ..., :3] == 0, axis=-1)) for seed in range(6)])
    assert 0.08 < zeros["whole"] < 0.2 and zeros["window"] > zeros["whole"] + 0.05, zeros


def test_official_swap_writes_into_the_stack_scale2_is_made_from(run_views):
    # On the RandomCrop path the official swap writes into the full stack, so
    # scale 2 of the swapped versions differs from the clean recipe's, while
    # the versions never swapped at scale 1 agree at scale 2 before their swap.
    stack, hw = _stack_in_canvas(PICTURES["astronaut_384x512"]())
    key = jax.random.key(5)
    off_v, _, _ = run_views("official", key, stack, hw)
    clean_v, _, _ = run_views("clean", key, stack, hw)
    # scale 2 rows of versions 0, 1 (not swapped at scale 2): query channels
    assert not np.allclose(off_v[4:6, ..., :3], clean_v[4:6, ..., :3], atol=1e-3)


def test_official_swap_on_a_canvas_smaller_than_a_crop(run_views):
    """A class of small pictures makes a canvas whose half size is under the
    160-pixel crop (here 128 x 112 at scale 2): the official CenterCrop pads
    a copy, so nothing is written back, and the views still equal the
    official lines'."""
    picture = _photo("coffee", 224, 256, 50, 100)
    stack = _versions(picture)  # the canvas is the picture: (224, 256)
    views, offsets, origins = run_views("official", jax.random.key(3), stack, (224, 256))
    geometry = [(int(offsets[s][0]), int(offsets[s][1]), int(origins[s][0]), int(origins[s][1]))
                for s in range(2)]
    chunk1 = torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()
    ref = official_views(chunk1, P, N_AUG, geometry, "official").permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(views[:4], ref[:4])
    np.testing.assert_allclose(views[4:], ref[4:], atol=1e-5)
