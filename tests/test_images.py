"""The image loader: demo-exact decoding and half scale, and every bad input reported."""

import concurrent.futures
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_inputs import make_mixed_folder, photo, with_exif_orientation
from reiqa_jax.images import (DEFAULT_MAX_PIXELS, ImageLoadError, check_max_pixels, image_size,
                              load_image)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return make_mixed_folder(tmp_path_factory.mktemp("mixed"))


def test_matches_the_released_demo_decoding(tmp_path):
    path = tmp_path / "chelsea.jpg"
    photo("chelsea", None).save(path, quality=85)  # 451x300: odd width
    loaded = load_image(path)
    reference = Image.open(path).convert("RGB")
    np.testing.assert_array_equal(loaded.full, np.asarray(reference))
    half = reference.resize((reference.size[0] // 2, reference.size[1] // 2))
    assert loaded.half.shape == (150, 225, 3)
    np.testing.assert_array_equal(loaded.half, np.asarray(half))
    # PIL's default filter for RGB resize is bicubic: the demo's half scale.
    np.testing.assert_array_equal(
        loaded.half, np.asarray(reference.resize(half.size, Image.Resampling.BICUBIC)))


def test_every_good_mode_loads_as_rgb_uint8(mixed):
    for path in mixed["good"]:
        loaded = load_image(path)
        assert loaded.full.dtype == np.uint8 and loaded.full.ndim == 3
        assert loaded.full.shape[2] == 3
        h, w = loaded.full.shape[:2]
        assert loaded.half.shape == (h // 2, w // 2, 3)


def test_sixteen_bit_is_scaled_not_clipped(mixed):
    path = next(p for p in mixed["good"] if p.name == "h_gray16.png")
    loaded = load_image(path)
    eight = np.asarray(photo("astronaut").convert("L"))
    # 16-bit values v*257 come back as v: PIL's convert('RGB') would give 255 almost everywhere.
    np.testing.assert_array_equal(loaded.full[..., 0], eight)
    np.testing.assert_array_equal(loaded.full[..., 0], loaded.full[..., 2])
    assert (np.asarray(Image.open(path).convert("RGB")) == 255).mean() > 0.85


def test_alpha_is_dropped_like_convert_rgb(mixed):
    rgba = next(p for p in mixed["good"] if p.name == "g_rgba.png")
    np.testing.assert_array_equal(load_image(rgba).full, np.asarray(photo("astronaut")))


@pytest.mark.parametrize("name, fragment", [
    ("k_truncated.jpg", "truncated"),
    ("l_garbage.jpg", "cannot identify"),
    ("m_text_named.png", "cannot identify"),
    ("n_empty.jpg", "cannot identify"),
    ("o_one_pixel.png", "at least 2x2"),
    ("p_bomb.png", "decompression bomb"),
    ("q_float.tif", "mode F"),
])
def test_bad_inputs_raise_one_line_errors(mixed, name, fragment):
    path = next(p for p in mixed["bad"] if p.name == name)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_exif_orientation_ignored_by_default_applied_on_request(tmp_path):
    upright = photo("astronaut", (96, 64))
    path = tmp_path / "rotated.jpg"
    path.write_bytes(with_exif_orientation(upright, 6))  # 6: stored rotated, view turned 90° CW
    as_stored = load_image(path)
    turned = load_image(path, exif_transpose=True)
    assert as_stored.full.shape == (64, 96, 3)  # what the released demo computes on
    assert turned.full.shape == (96, 64, 3)
    assert image_size(path) == (64, 96)
    assert image_size(path, exif_transpose=True) == (96, 64)
    np.testing.assert_array_equal(turned.full, np.rot90(as_stored.full, k=-1))


def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "photo.png"
    photo().save(path)
    with pytest.raises(ImageLoadError, match="more than the limit of 1000"):
        load_image(Path(path), max_pixels=1000)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """1-bit PNGs over PIL's limit (PIL warns) and over twice it (PIL refuses); small files."""
    folder = tmp_path_factory.mktemp("bombs")
    sizes = {"over.png": (9_500, 9_500), "twice_over.png": (14_000, 13_000)}
    for name, size in sizes.items():
        Image.new("1", size).save(folder / name)
    return {folder / name: size for name, size in sizes.items()}


def test_bombs_are_refused_at_our_limit_without_pils_warning(bombs):
    limit = Image.MAX_IMAGE_PIXELS
    assert DEFAULT_MAX_PIXELS == limit == 89_478_485  # the figure the --max-pixels help quotes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Threads read headers at once, as extraction does; PIL's limit comes back right.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            sizes = list(pool.map(image_size, [path for path in bombs for _ in range(4)]))
        for path, (width, height) in bombs.items():
            with pytest.raises(ImageLoadError) as info:
                load_image(path)
            assert str(info.value) == (
                f"image has {width}x{height} = {width * height} pixels, more than the limit of "
                f"{DEFAULT_MAX_PIXELS} (possible decompression bomb; see max_pixels / "
                f"--max-pixels)")
    assert sizes == [(height, width) for width, height in bombs.values() for _ in range(4)]
    assert [str(w.message) for w in caught] == []
    assert Image.MAX_IMAGE_PIXELS == limit


def test_special_files_are_refused_without_being_read(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it for reading would block forever
    dangling = tmp_path / "gone.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    for read in (image_size, load_image):
        with pytest.raises(ImageLoadError, match="not a regular file \\(a FIFO\\)"):
            read(fifo)
        with pytest.raises(ImageLoadError, match="broken symbolic link"):
            read(dangling)
        with pytest.raises(ImageLoadError, match="a directory"):
            read(tmp_path)


def test_max_pixels_must_be_positive_and_may_exceed_pils_limit(bombs):
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="max_pixels"):
            check_max_pixels(bad)
    path = next(path for path, size in bombs.items() if size[0] * size[1] > 100_000_000)
    with pytest.raises(ImageLoadError, match="more than the limit of 100000000"):
        load_image(path, max_pixels=100_000_000)  # refused from its header, before decoding
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS  # PIL's own limit is left as it was
