"""Size buckets and memory-bounded batches for feature extraction.

XLA compiles one program per input shape. Images are therefore padded up to
a *bucket* shape (the masked encoder of :mod:`reiqa_jax.models.masked` keeps
their features exact), and images of one bucket share batches.

Bucket sizes form a geometric grid with ``per_octave`` steps per doubling:
between 2**k and 2**(k+1) the sizes are 2**k * (1 + j / per_octave). With
the default 4 a side grows by at most 25 % (on average about 8 %), and the
grid is closed under halving, so the half scale of a bucket (H // 2, W // 2)
is again a bucket. ``per_octave=0`` keeps every image at its own size.

A batch holds at most ``batch_pixels`` padded pixels per device (the memory
an encoder step needs is proportional to it) and at most ``per_device``
images per device. Batch sizes are powers of two times the device count, so
each bucket compiles for a few batch sizes at most; no image is repeated and
no slot is padded except to fill the last devices.

A bucket pays for its programs only when many images use them. Images of
sparse buckets are therefore packed, any sizes together, into *canvases* of
one shape (:func:`pack`): at multiples of 32 pixels, with a 32-pixel gutter
between two images, which the masked encoder needs to keep them apart.
"""
from __future__ import annotations

MIN_SIZE = 32


def bucket_size(n: int, per_octave: int = 4) -> int:
    """The smallest grid size >= n (n itself when ``per_octave`` is 0)."""
    if n < 1:
        raise ValueError(f"size must be positive, got {n}")
    if per_octave == 0:
        return n
    if n <= MIN_SIZE:
        return MIN_SIZE
    octave = 1 << ((n - 1).bit_length() - 1)  # 2**k < n <= 2**(k+1)
    step = max(1, octave // per_octave)
    return octave + -(-(n - octave) // step) * step


def bucket_shape(height: int, width: int, per_octave: int = 4) -> tuple[int, int]:
    """The padded (H, W) of an image of (height, width)."""
    return bucket_size(height, per_octave), bucket_size(width, per_octave)


def largest_power_of_two(n: int) -> int:
    """The largest power of two <= n (n >= 1)."""
    return 1 << (n.bit_length() - 1)


def images_per_device(area: int, batch_pixels: int, per_device: int) -> int:
    """How many images of ``area`` padded pixels one device step takes (0: not even one)."""
    if area > batch_pixels:
        return 0
    return largest_power_of_two(max(1, min(per_device, batch_pixels // area)))


def split_batches(count: int, per_device: int, devices: int = 1) -> list[int]:
    """Batch sizes (slots, multiples of ``devices``) that hold ``count`` images.

    Full batches of ``per_device * devices`` first, then the rest as powers of
    two times ``devices``; only the last batch may have empty slots (fewer
    than ``devices``). ``per_device`` must be a power of two.
    """
    sizes = []
    full = per_device * devices
    while count >= full:
        sizes.append(full)
        count -= full
    while count >= devices:
        size = largest_power_of_two(count // devices) * devices
        sizes.append(size)
        count -= size
    if count:
        sizes.append(devices)
    return sizes


# -- canvases: several images of any sizes in one padded slot -------------------

GUTTER = 32  # zero pixels between two images in a canvas (see reiqa_jax.models.masked)


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def footprint(height: int, width: int) -> tuple[int, int]:
    """Space an image takes in a canvas: its size rounded up to 32, plus the gutter."""
    return round_up(height, GUTTER) + GUTTER, round_up(width, GUTTER) + GUTTER


def fits_canvas(height: int, width: int, canvas: tuple[int, int]) -> bool:
    fh, fw = footprint(height, width)
    return fh <= canvas[0] + GUTTER and fw <= canvas[1] + GUTTER


# Orders tried by pack(): tallest first, largest first, longest side first.
_PACKING_ORDERS = (
    lambda fh, fw: (-fh, -fw),
    lambda fh, fw: (-fh * fw, -fh),
    lambda fh, fw: (-max(fh, fw), -fh * fw),
)


def cut_height(used: int, canvas_height: int) -> int:
    """Height a part-filled canvas is cut to: the bucket size of the rows ``used``."""
    return min(canvas_height, bucket_size(round_up(used, GUTTER)))


def pack(sizes: list[tuple[int, int]], canvas: tuple[int, int]) -> list[list[tuple[int, int, int]]]:
    """Packs images of ``sizes`` (height, width) into canvases of shape ``canvas``.

    Skyline, bottom-left: each image where it sits lowest (then leftmost) in
    the first canvas with room, in each of a few orders (tallest, largest,
    longest side first); the packing that leaves the fewest canvas pixels
    wins (the last canvas counted to its :func:`cut_height`, as
    :mod:`reiqa_jax.extract` cuts it). Returns, per canvas, (item, top,
    left) with tops and lefts multiples of 32 and a gutter of at least 32
    pixels between images (the gutter after the last image of a row or
    column falls outside the canvas). Every size must ``fits_canvas``.
    """
    if not sizes:
        return []
    for size in sizes:
        if not fits_canvas(*size, canvas):
            raise ValueError(f"image {size} does not fit a canvas of {canvas}")
    best, best_cost = [], None
    for key in _PACKING_ORDERS:
        order = sorted(range(len(sizes)), key=lambda i: (*key(*footprint(*sizes[i])), i))
        canvases = _skyline_pack(sizes, canvas, order)
        last = max(top + sizes[item][0] for item, top, _ in canvases[-1])
        cost = (len(canvases) - 1) * canvas[0] + cut_height(last, canvas[0])
        if best_cost is None or cost < best_cost:
            best, best_cost = canvases, cost
    return best


def _skyline_pack(sizes, canvas, order) -> list[list[tuple[int, int, int]]]:
    height, width = canvas[0] + GUTTER, canvas[1] + GUTTER  # room for the last gutters
    canvases: list[list[tuple[int, int, int]]] = []
    skylines: list[list[tuple[int, int, int]]] = []  # per canvas: (x, width, top) segments
    for item in order:
        fh, fw = footprint(*sizes[item])
        for number, skyline in enumerate(skylines):
            spot = _lowest_spot(skyline, width, height, fw, fh)
            if spot is not None:
                break
        else:
            number, skyline, spot = len(skylines), [(0, width, 0)], (0, 0)
            skylines.append(skyline)
            canvases.append([])
        top, left = spot
        canvases[number].append((item, top, left))
        skylines[number] = _raise_skyline(skyline, left, fw, top + fh)
    return canvases


def _lowest_spot(skyline, width, height, fw, fh):
    best = None
    for start in range(len(skyline)):
        left = skyline[start][0]
        if left + fw > width:
            break
        top, covered, index = 0, 0, start
        while covered < fw:
            top = max(top, skyline[index][2])
            covered += skyline[index][1]
            index += 1
        if top + fh <= height and (best is None or (top, left) < best):
            best = (top, left)
    return best


def _raise_skyline(skyline, left, fw, top):
    out = []
    for x, w, y in skyline:
        if x + w <= left or x >= left + fw:
            out.append((x, w, y))
            continue
        if x < left:
            out.append((x, left - x, y))
        if x + w > left + fw:
            out.append((left + fw, x + w - left - fw, y))
    out.append((left, fw, top))
    out.sort()
    merged = []
    for segment in out:
        if merged and merged[-1][2] == segment[2]:
            x, w, y = merged[-1]
            merged[-1] = (x, w + segment[1], y)
        else:
            merged.append(segment)
    return merged
