"""crop_swap 'official' and 'clean' against a PyTorch restatement of the
official dataset.py crop lines (aliased views, in-place swap) on real photos."""

import jax
import numpy as np
import pytest
import torch
from skimage import data

from reference_dataset_torch import centre_origin, official_views
from reiqa_jax.augment import quality_views
from reiqa_jax.augment.quality_views import QualityViewConfig
from reiqa_jax.data import tiles

P = 160
N_AUG = 3  # 4 versions: 2 swapped at scale 1, 2 at scale 2


def _versions(picture):
    """(h, w, 3) uint8 -> (4, h, w, 3) float32: the picture and three
    deterministic variants (stand-ins for distortions)."""
    x = picture.astype(np.float32) / 255.0
    return np.stack([x, x * 0.8, 1.0 - x, x * x])


def _stack_in_tile(picture, transposed):
    """Our storage: versions in a 384x512 tile, mirror padding beyond the picture."""
    v = _versions(picture)
    if transposed:
        v = v.transpose(0, 2, 1, 3)
    h, w = v.shape[1:3]
    return np.pad(v, ((0, 0), (0, 384 - h), (0, 512 - w), (0, 0)), mode="symmetric"), (h, w)


@pytest.fixture(scope="module")
def run_views():
    fns = {}

    def run(mode, key, stack, hw, transposed):
        if mode not in fns:
            cfg = QualityViewConfig(n_aug=N_AUG, crop_swap=mode)
            fns[mode] = jax.jit(lambda k, s, v, t: quality_views.views_from_stack(k, s, v, t, cfg))
        return [np.asarray(a) for a in fns[mode](key, stack, np.asarray(hw, np.int32),
                                                  np.bool_(transposed))]
    return run


PICTURES = {
    # region always a view of the picture (RandomCrop path at scale 1)
    "coffee_384x512": lambda: data.coffee()[:384, :512],
    # 280 rows: S = 160 + max(y, x) is 272..303, so view or padded copy
    "chelsea_280x451": lambda: data.chelsea()[:280],
    # portrait (400 tall, 384 wide), stored transposed in the tile
    "coffee_400x384": lambda: np.ascontiguousarray(data.coffee()[:, :384]),
}


@pytest.mark.parametrize("mode", ["official", "clean"])
def test_crop_swap_matches_pytorch_restatement(mode, run_views):
    paths = set()
    for name, make in PICTURES.items():
        picture = make()
        transposed = picture.shape[0] > picture.shape[1]
        stack, hw = _stack_in_tile(picture, transposed)
        for seed in range(3):
            views, offsets, origins = run_views(mode, jax.random.key(seed), stack, hw, transposed)
            geometry = []
            for scale in range(2):
                y, x = (int(v) for v in offsets[scale])
                top, left = (int(v) for v in origins[scale])
                if transposed:  # our origins are in the storage frame
                    top, left = left, top
                ph, pw = picture.shape[:2]
                if scale == 1:
                    ph, pw = ph // 2, pw // 2
                size = P + max(y, x)
                if ph < size or pw < size:  # CenterCrop: origin is not random
                    assert (top, left) == (centre_origin(ph, size), centre_origin(pw, size))
                    paths.add("centre" if scale == 0 else "centre2")
                else:
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
    assert {"random", "centre", "centre2"} <= paths, paths


def test_official_swap_writes_into_the_stack_scale2_is_made_from(run_views):
    # On the RandomCrop path the official swap writes into the full stack, so
    # scale 2 of the swapped versions differs from the clean recipe's, while
    # the versions never swapped at scale 1 agree at scale 2 before their swap.
    stack, hw = _stack_in_tile(data.coffee()[:384, :512], False)
    key = jax.random.key(5)
    off_v, _, _ = run_views("official", key, stack, hw, False)
    clean_v, _, _ = run_views("clean", key, stack, hw, False)
    # scale 2 rows of versions 0, 1 (not swapped at scale 2): query channels
    assert not np.allclose(off_v[4:6, ..., :3], clean_v[4:6, ..., :3], atol=1e-3)
