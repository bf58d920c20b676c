"""benchmarks/demo_probe.py: one kind at a time, each photo held out in turn."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
from demo_testing import labels_only
from PIL import Image

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _probe():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("demo_probe", BENCHMARKS / "demo_probe.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_a_feature_that_carries_the_level_is_read_and_noise_is_not():
    probe = _probe()
    rng = np.random.default_rng(0)
    photos = np.repeat(np.arange(5), 6)                 # 5 photos: pristine + 5 levels each
    scores = np.tile([5.0, 4, 3, 2, 1, 0], 5)
    # the level, shifted per photo (content) and a little noisy
    carried = np.stack([scores + 0.05 * rng.normal(size=30), rng.normal(size=30)], axis=1)
    carried[:, 0] += np.repeat(rng.normal(size=5) * 0.3, 6)
    for name, make in probe.regressors().items():
        srcc, above = probe.leave_one_photo_out(carried, scores, photos, make)
        assert srcc > 0.95 and above == 1.0, (name, srcc, above)
    noise = rng.normal(size=(30, 4))
    srcc, above = probe.leave_one_photo_out(noise, scores, photos, probe.regressors()["ridge"])
    assert abs(srcc) < 0.5, srcc


def test_duplicated_lines_count_what_nearest_upscaling_leaves(tmp_path):
    probe = _probe()
    rng = np.random.default_rng(1)
    pristine = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    Image.fromarray(pristine).save(tmp_path / "pristine.png")
    # NEAREST down to half the rows (columns kept) and back: every other row repeats
    small = Image.fromarray(pristine).resize((64, 24), Image.NEAREST)
    small.resize((64, 48), Image.NEAREST).save(tmp_path / "rows.png")
    assert probe.duplicated_lines(str(tmp_path / "pristine.png")) == [0.0, 0.0]
    rows, columns = probe.duplicated_lines(str(tmp_path / "rows.png"))
    assert rows == 24 / 47 and columns == 0.0


def test_pooled_counts_a_photo_as_passing_only_when_every_kind_passes():
    """One regressor for all kinds: a feature that is the label everywhere except
    photo 2's darken level 4 (equal to its pristine) fails exactly that photo,
    on darken and on every kind at once, whichever regressor reads it."""
    probe = _probe()
    labelled = labels_only([f"p{i}" for i in range(5)])
    x = labelled.scores.copy()[:, None]
    x[(labelled.photos == "p2") & (labelled.kinds == "darken") & (labelled.levels == 4)] = 5.0
    for name in ("ridge alpha 1", "rbf-svr C 1"):
        result = probe.pooled(x, labelled, probe.pooled_regressors()[name])
        assert result["above"] == {"jpeg": 1.0, "darken": 0.8}, name
        assert result["every_kind"] == 0.8, name
