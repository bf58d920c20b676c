"""The demo's distortion kinds: levels monotone in severity, by parameter and as measured."""
import jax
import numpy as np
import pytest
from jax import lax

from reiqa_jax.augment import DISTORTIONS, NAMES, distort, number_of
from reiqa_jax.demo import kinds
from reiqa_jax.demo.photos import cover_crop, load_photo


def test_every_official_kind_has_its_parameters_and_rule():
    assert set(kinds.SEVERITY) == set(NAMES)
    for kind in NAMES:
        assert len(kinds.level_parameters(kind)) == 5


def test_demo_kinds_are_monotone_and_the_others_are_left_out_for_a_reason():
    assert len(kinds.KINDS) >= 7 and len(set(kinds.KINDS)) == len(kinds.KINDS)
    for kind in kinds.KINDS:
        assert kinds.is_monotone(kind), (kind, kinds.severities(kind))
    # the two kinds whose levels are not ordered by severity
    assert {k for k in NAMES if not kinds.is_monotone(k)} == {"mean_shift", "contrast_change"}
    assert kinds.level_parameters("contrast_change") == (0.3, 0.15, 0.0, -0.4, -0.6)
    assert kinds.level_parameters("jpeg") == (70, 43, 36, 24, 7)   # quality falls: severity rises
    # colour-only kinds would leave the greyscale test photos unchanged
    assert not {"color_diffusion", "color_saturation", "color_oversaturation"} & set(kinds.KINDS)


@pytest.fixture(scope="module")
def distorted():
    """Every demo kind at levels 0..4 on a colour and a greyscale test photo, one key
    per series as the demo's labelled set draws them: (2, K, 5, H, W, 3)."""
    pictures = np.stack([cover_crop(load_photo(n), (96, 128)) for n in ("coffee", "camera")])
    x = pictures.astype(np.float32) / 255.0
    numbers = np.array([number_of(k) for k in kinds.KINDS], np.int32)
    kind = np.tile(np.repeat(numbers, 5), 2)
    level = np.tile(np.arange(5, dtype=np.int32), 2 * len(numbers))
    source = np.repeat(np.arange(2, dtype=np.int32), 5 * len(numbers))
    series = kind * 2 + source
    # only the demo's kinds are compiled (the others never run here)
    ops = tuple(d.fn if d.name in kinds.KINDS else (lambda key, image, level: image)
                for d in DISTORTIONS)

    @jax.jit
    def run(key, x):
        def one(args):
            k, lv, src, s = args
            return distort(jax.random.fold_in(key, s), x[src], k, lv, ops=ops)
        return lax.map(one, (kind, level, source, series))

    out = run(jax.random.key(0), x)
    return x, np.asarray(out).reshape(2, len(numbers), 5, *x.shape[1:])


def test_measured_change_grows_with_the_level_on_colour_and_grey_photos(distorted):
    pristine, out = distorted
    for p in range(2):
        for k, kind in enumerate(kinds.KINDS):
            change = [float(np.abs(out[p, k, level] - pristine[p]).mean()) for level in range(5)]
            assert change[0] > 0, (kind, p)     # every level changes the picture, grey ones too
            assert all(a < b for a, b in zip(change, change[1:])), (kind, p, change)
