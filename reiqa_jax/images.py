"""Decoding user images into RGB uint8 arrays, as the released Re-IQA demos do.

The released demos open an image with ``Image.open(p).convert('RGB')`` and make
the half scale with ``image.resize((w // 2, h // 2))`` (PIL's default bicubic
filter). We do exactly that, and decide the cases the demos never met:

* **EXIF orientation** is *not* applied by default, because the demos and the
  official training loader ignore it: features then match the released code
  bit for bit. ``exif_transpose=True`` rotates the pixels upright first (what
  a viewer shows), for users who want orientation-invariant scores.
* **16-bit images** (modes ``I;16*``, and ``I`` holding values above 255) are
  scaled to 8 bits (``round(v / 257)``). PIL's own ``convert('RGB')`` clips
  them at 255, which turns a normal 16-bit photo almost white.
* **Alpha** (RGBA, LA, PA, P with transparency) is dropped, as
  ``convert('RGB')`` does: the colour channels are kept as stored.
* **CMYK, YCbCr, L, P, 1** go through PIL's ``convert('RGB')``.
* Floating-point images (mode ``F``) have no agreed range and are refused.
* Images with more than ``max_pixels`` pixels (by default PIL's
  decompression-bomb limit, 89,478,485) are refused from their header,
  before their pixels are decoded, with a message that quotes that limit.
  PIL's own check is set aside while we read a header (its warning would
  reach the user's terminal, and above twice its limit it refuses with a
  message quoting that double), so ``max_pixels`` is the one limit, smaller
  or larger than PIL's.
* Images smaller than 2x2 are refused: the half scale would be empty.
* Only regular files are opened: a broken symbolic link, a FIFO (which would
  block forever), a socket or a device is refused without being read.

Every refusal and every decoding failure (truncated file, not an image)
raises :class:`ImageLoadError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from reiqa_jax.errors import ReiqaError, one_line

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageLoadError(ReiqaError, ValueError):
    """An input that cannot be used as an image; the message is one line."""


# Held while PIL's module-wide limit is set aside to read a header (threads decode at once).
_PIL_LIMIT_LOCK = threading.Lock()
_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISDIR, "a directory"))


def check_max_pixels(max_pixels: int) -> int:
    """``max_pixels`` as a positive int, else ValueError."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    return max_pixels


def too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    """The one-line refusal of an image over the ``max_pixels`` limit."""
    return (f"image has {width}x{height} = {width * height} pixels, more than the limit of "
            f"{max_pixels} (possible decompression bomb; see max_pixels / --max-pixels)")


def _check_regular_file(path: str | Path) -> None:
    """Raises ImageLoadError unless ``path`` is a regular file (after symbolic links)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageLoadError(f"broken symbolic link (to {os.readlink(path)})") from None
        raise ImageLoadError("no such file") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read file: {one_line(exc, with_type=True)}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "not a file")
        raise ImageLoadError(f"not a regular file ({kind}); not read")


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """An image at the two scales Re-IQA uses.

    full: (H, W, 3) uint8.  half: (H // 2, W // 2, 3) uint8, PIL bicubic.
    """

    full: np.ndarray
    half: np.ndarray


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB as ``convert('RGB')`` gives it, with 16-bit data scaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        if image.mode != "I" or values.max(initial=0) > 255:
            values = values / 257.0
        gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=-1), "RGB")
    if image.mode == "F":
        raise ImageLoadError("floating-point image (mode F) has no defined 0-255 range")
    return image.convert("RGB")


def _open_header(path: str | Path) -> Image.Image:
    """``Image.open(path)`` (the header only) without PIL's decompression-bomb check.

    PIL reads its limit from a module global at that moment; it is set aside
    under a lock, so that threads opening images at once restore it right.
    The callers apply ``max_pixels`` to the size instead.
    """
    with _PIL_LIMIT_LOCK:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


@contextlib.contextmanager
def _opened(path: str | Path, failure: str, errors: tuple[type[BaseException], ...]):
    """The image at ``path``, opened, for the ``with`` body; PIL's errors turned
    into a one-line ImageLoadError ``FAILURE: ...`` for ``errors`` raised while
    opening or in the body (``decompression bomb: ...`` for a frame that PIL
    finds too large while decoding)."""
    _check_regular_file(path)
    try:
        with _open_header(path) as image:
            yield image
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"decompression bomb: {one_line(exc, with_type=True)}") from None
    except errors as exc:
        raise ImageLoadError(f"{failure}: {one_line(exc, with_type=True)}") from None


def open_image(path: str | Path, *, exif_transpose: bool = False,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Opens and fully decodes ``path`` as an RGB PIL image, or raises ImageLoadError."""
    check_max_pixels(max_pixels)
    with _opened(path, "cannot decode image",
                 (OSError, ValueError, SyntaxError, EOFError, MemoryError)) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageLoadError(too_many_pixels(width, height, max_pixels))
        image.load()
        if exif_transpose:
            image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
        rgb.load()
    if min(rgb.size) < 2:
        raise ImageLoadError(f"image is {rgb.size[0]}x{rgb.size[1]}; at least 2x2 is needed")
    return rgb


def half_scale(image: Image.Image) -> Image.Image:
    """The released demos' half scale: ``resize((w // 2, h // 2))``, PIL's default filter."""
    return image.resize((image.size[0] // 2, image.size[1] // 2))


def load_image(path: str | Path, *, exif_transpose: bool = False,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Loads ``path`` at full and half scale as uint8 arrays; raises ImageLoadError."""
    rgb = open_image(path, exif_transpose=exif_transpose, max_pixels=max_pixels)
    return LoadedImage(full=np.asarray(rgb), half=np.asarray(half_scale(rgb)))


def image_size(path: str | Path, *, exif_transpose: bool = False) -> tuple[int, int]:
    """(height, width) from the header alone, after EXIF rotation when asked."""
    with _opened(path, "cannot read image header",
                 (OSError, ValueError, SyntaxError, EOFError)) as image:
        width, height = image.size
        if exif_transpose and image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            width, height = height, width
    return height, width
