"""Dead-leaves training pictures (reiqa_jax.data.synthetic)."""
import numpy as np
import pytest

from reiqa_jax.data.synthetic import DeadLeavesParams, dead_leaves, dead_leaves_set, rng_for


def _spectrum_slope(image: np.ndarray) -> float:
    """Slope of the radially averaged power spectrum of the grey levels (log-log)."""
    g = image.astype(np.float64).mean(-1)
    g = (g - g.mean()) * np.hanning(g.shape[0])[:, None] * np.hanning(g.shape[1])[None]
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2
    h, w = g.shape
    y, x = np.indices(power.shape)
    radius = np.hypot((y - h // 2) / h, (x - w // 2) / w).ravel()
    bins = np.geomspace(0.02, 0.4, 12)
    which = np.digitize(radius, bins)
    mean = [power.ravel()[which == i].mean() for i in range(1, len(bins))]
    return float(np.polyfit(np.log(np.sqrt(bins[1:] * bins[:-1])), np.log(mean), 1)[0])


@pytest.fixture(scope="module")
def pictures():
    return dead_leaves_set(0, range(6), (96, 128))


def test_a_picture_is_a_function_of_seed_and_index(pictures):
    assert pictures.shape == (6, 96, 128, 3) and pictures.dtype == np.uint8
    np.testing.assert_array_equal(dead_leaves(rng_for(0, 3), (96, 128)), pictures[3])
    assert not np.array_equal(dead_leaves(rng_for(1, 3), (96, 128)), pictures[3])
    assert len({p.tobytes() for p in pictures}) == 6


def test_pictures_have_natural_image_statistics(pictures):
    # scale invariance: a power spectrum ~ 1/f^2 (natural photos: slopes -2 to -3)
    slopes = [_spectrum_slope(p) for p in pictures]
    assert all(-2.8 < s < -1.6 for s in slopes), slopes
    for p in pictures:
        grey = p.astype(np.float64).mean(-1)
        # occluding shapes: sharp edges beside flat areas, not noise everywhere
        step = np.abs(np.diff(grey, axis=1))
        assert np.mean(step < 2) > 0.2 and np.mean(step > 30) > 0.05
        assert 40 < grey.mean() < 215 and grey.std() > 20
        assert len(np.unique(p.reshape(-1, 3), axis=0)) > 2000   # textured, anti-aliased


def test_shapes_follow_the_size_law():
    # many small shapes, few large ones: p(r) ~ r^-3
    from reiqa_jax.data.synthetic import _radii

    r = _radii(np.random.default_rng(0), 20000, 1.5, 60.0, 3.0)
    assert r.min() >= 1.5 and r.max() <= 60
    # P(r > x) ~ x^-2 for a density ~ r^-3
    ratio = np.mean(r > 3.0) / np.mean(r > 6.0)
    assert 3.3 < ratio < 4.7


def test_supersampling_smooths_edges():
    sharp = dead_leaves(rng_for(0, 1), (96, 128), DeadLeavesParams(supersample=1))
    smooth = dead_leaves(rng_for(0, 1), (96, 128))
    # anti-aliased edges have intermediate values: more distinct grey levels per edge
    assert len(np.unique(smooth)) >= len(np.unique(sharp))
