"""benchmarks/demo_probe.py: one kind at a time, each photo held out in turn."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
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
