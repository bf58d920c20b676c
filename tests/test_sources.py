"""Training data sources: synthetic:N, skimage:NAMES, repeats (*K) and joins (+)."""
import os

import numpy as np
import pytest
from PIL import Image

from reiqa_jax.data import sources
from reiqa_jax.data.synthetic import dead_leaves, rng_for


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.SYNTHETIC_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_synthetic_source_writes_once_and_reads_back(tmp_path, cache):
    paths = sources.training_images("synthetic:3:64x48")
    assert [os.path.basename(p) for p in paths] == ["0000000.png", "0000001.png", "0000002.png"]
    assert all(p.startswith(str(cache)) for p in paths)
    first = np.asarray(Image.open(paths[1]))
    np.testing.assert_array_equal(first, dead_leaves(rng_for(sources.SYNTHETIC_SEED, 1), (48, 64)))
    stamps = [os.stat(p).st_mtime_ns for p in paths]
    again = sources.training_images("synthetic:4:64x48")   # the first 3 are reused
    assert again[:3] == paths and [os.stat(p).st_mtime_ns for p in paths] == stamps
    assert sources.parse_synthetic("synthetic:10") == (10, (384, 512))
    # joined with a folder of photos: one list after the other
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(first).save(folder / "a.png")
    assert sources.training_images(f"synthetic:2:64x48+{folder}") == paths[:2] + [
        str(folder / "a.png")]


@pytest.mark.parametrize("spec, message", [
    ("synthetic:", "write synthetic:N"), ("synthetic:5:64", "write synthetic:N"),
    ("synthetic:0", "at least 1"), ("synthetic:5:16x16", "at least 32 x 32")])
def test_synthetic_source_refuses_bad_specs_in_one_line(spec, message):
    with pytest.raises(sources.DataError, match=message) as info:
        sources.training_images(spec)
    assert "\n" not in str(info.value)


def test_bundled_photos_repeats_and_joins(tmp_path, cache):
    data = "synthetic:2:64x48*3+skimage:moon,chelsea*2"
    paths = sources.training_images(data)
    assert sources.count_images(data) == len(paths) == 2 * 3 + 2 * 2
    assert paths[:2] * 3 == paths[:6] and paths[6:8] == paths[8:10]
    moon = Image.open(paths[6])
    assert moon.mode == "RGB" and min(moon.size) == 384      # 512 x 512 brought down
    chelsea = Image.open(paths[7])
    assert chelsea.size == (451, 300)                        # already small enough: as is
    # 'skimage' alone: every bundled photo, written once to the same cache folder
    from reiqa_jax.data.sample_photos import ALL
    every = sources.training_images("skimage")
    assert sources.count_images("skimage") == len(every) == len(ALL)
    assert [os.path.basename(p) for p in every] == [f"{name}.png" for name in ALL]
    assert paths[6] in every and all(p.startswith(str(cache)) for p in every)
    # counting never makes pictures
    assert sources.count_images("synthetic:50:64x48*2") == 100
    assert not (cache / "dead_leaves-v1-seed0-64x48" / "0000049.png").exists()
    # a real path with + or * in its name is a path
    odd = tmp_path / "a+b*2"
    odd.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(odd / "x.png")
    assert sources.training_images(str(odd)) == [str(odd / "x.png")]


def test_unknown_bundled_photo_is_one_line(cache):
    with pytest.raises(sources.DataError, match="no bundled photo 'nosuch'"):
        sources.training_images("skimage:moon,nosuch")
