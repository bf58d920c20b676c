"""`reiqa demo`: the no-download end-to-end path on bundled photos."""

import numpy as np

from reiqa_jax.demo import DEMO_PHOTOS, run_demo


def test_demo_writes_photos_checkpoints_and_features(tmp_path, capsys):
    arch = {"depth": 18, "width": 0.25}  # the CLI uses ResNet-50; the path is the same
    assert run_demo(tmp_path, arch=arch) == 0
    out = capsys.readouterr().out
    result = np.load(tmp_path / "features.npz")
    assert len(result["paths"]) == 2 * len(DEMO_PHOTOS) and len(result["failed"]) == 0
    assert result["quality"].shape == result["content"].shape == (6, 256)
    # A JPEG-10 copy is a different image, and untrained encoders still see that.
    assert not np.allclose(result["quality"][0], result["quality"][1])
    assert "astronaut_jpeg10.jpg" in out and "features of 6 images" in out
    # A second run reuses the checkpoints it made.
    assert (tmp_path / "untrained_quality" / "reiqa.json").exists()
    assert run_demo(tmp_path, arch=arch) == 0
    np.testing.assert_allclose(np.load(tmp_path / "features.npz")["quality"], result["quality"])
