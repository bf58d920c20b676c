"""Size buckets and batch sizes: few shapes, bounded padding, no repeated images."""
import pytest

from reiqa_jax.buckets import (bucket_shape, bucket_size, fits_canvas, footprint,
                               images_per_device, largest_power_of_two, pack, split_batches)


def test_grid_bounds_the_padding_and_is_closed_under_halving():
    sizes = range(1, 5000)
    buckets = {bucket_size(n) for n in sizes}
    for n in sizes:
        b = bucket_size(n)
        assert b >= n and bucket_size(b) == b  # a bucket is its own bucket
        assert n <= 32 or b <= 1.25 * n  # at most 25 % per side above 32 px
    for b in buckets:
        if b >= 64:
            assert b // 2 in buckets and b % 2 == 0  # the half scale of a bucket is a bucket
    assert len(buckets) < 50  # 1..5000 px: a few dozen sizes, not thousands
    assert bucket_shape(384, 512) == (384, 512)  # KADID / KonIQ half: no padding
    assert bucket_shape(768, 1024) == (768, 1024)
    assert bucket_shape(300, 451) == (320, 512)


def test_exact_mode_keeps_each_size():
    assert bucket_shape(301, 451, per_octave=0) == (301, 451)
    with pytest.raises(ValueError):
        bucket_size(0)


def test_batches_are_bounded_by_pixels_and_never_repeat_images():
    assert images_per_device(100, 1000, 8) == 8
    assert images_per_device(300, 1000, 8) == 2  # 3 fit; powers of two only
    assert images_per_device(1000, 1000, 8) == 1
    assert images_per_device(1001, 1000, 8) == 0  # does not fit at all
    assert largest_power_of_two(7) == 4
    for count in range(0, 40):
        for per_device, devices in ((8, 1), (4, 2), (1, 3)):
            batches = split_batches(count, per_device, devices)
            assert sum(batches) - count < devices  # empty slots only to fill the devices
            assert all(b % devices == 0 and b <= per_device * devices for b in batches)
            assert all(largest_power_of_two(b // devices) == b // devices for b in batches)
    assert split_batches(13, 8) == [8, 4, 1]
    assert split_batches(3, 2, devices=2) == [2, 2]  # one empty slot on the last device


def test_canvas_packing_keeps_images_apart_and_aligned():
    import numpy as np

    rng = np.random.default_rng(0)
    sizes = [(int(h), int(w)) for h, w in rng.integers(2, 700, (60, 2))]
    canvas = (1024, 1024)
    canvases = pack(sizes, canvas)
    placed = sorted(item for c in canvases for item, _, _ in c)
    assert placed == list(range(len(sizes)))  # every image once
    for c in canvases:
        boxes = []
        for item, top, left in c:
            h, w = sizes[item]
            assert top % 32 == 0 and left % 32 == 0
            assert top + h <= canvas[0] and left + w <= canvas[1]
            fh, fw = footprint(h, w)  # the image plus its gutter below and to the right
            for t, l, bh, bw in boxes:
                assert top + fh <= t or t + bh <= top or left + fw <= l or l + bw <= left
            boxes.append((top, left, fh, fw))
    assert fits_canvas(1024, 1024, canvas) and not fits_canvas(1025, 10, canvas)
    with pytest.raises(ValueError, match="does not fit"):
        pack([(2000, 10)], canvas)


def test_packing_keeps_the_order_that_leaves_the_fewest_canvas_pixels():
    import numpy as np

    from reiqa_jax.buckets import _PACKING_ORDERS, _skyline_pack, cut_height

    canvas = (1024, 1024)

    def pixels(canvases, sizes):
        last = max(top + sizes[item][0] for item, top, _ in canvases[-1])
        return (len(canvases) - 1) * canvas[0] + cut_height(last, canvas[0])

    better = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        sizes = [(int(h), int(w)) for h, w in rng.integers(100, 700, (40, 2))]
        each = [pixels(_skyline_pack(sizes, canvas, sorted(
                    range(len(sizes)), key=lambda i: (*key(*footprint(*sizes[i])), i))), sizes)
                for key in _PACKING_ORDERS]
        assert pixels(pack(sizes, canvas), sizes) == min(each)
        better += min(each) < each[0]  # beats tallest-first alone
    assert better >= 1
