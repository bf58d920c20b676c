"""A folder of real photos mixed with every kind of bad input, made on the fly.

Used by the loader and extraction tests. Photos come from scikit-image's
bundled data; the bad files are made from them the way they occur in the wild.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def photo(name: str = "astronaut", size: tuple[int, int] | None = (96, 64)) -> Image.Image:
    """A bundled photo, optionally resized to (width, height) to keep tests fast."""
    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    return image.resize(size, Image.BICUBIC) if size else image


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def with_exif_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(image, exif=exif, quality=95)


def make_mixed_folder(root: Path) -> dict[str, list[Path]]:
    """Writes good images (several modes) and bad ones; returns {'good': [...], 'bad': [...], 'skipped': [...]}.

    Good images share shapes (96x64, 64x48) so batching by shape is exercised.
    """
    root.mkdir(parents=True, exist_ok=True)
    base = photo("astronaut")
    small = photo("coffee", (64, 48))
    good, bad, skipped = [], [], []

    def save(name, image, **options):
        path = root / name
        image.save(path, **options)
        return path

    good.append(save("a_rgb.png", base))
    good.append(save("b_coffee.jpg", small, quality=90))
    good.append(save("c_gray_L.png", base.convert("L")))
    good.append(save("d_gray_alpha_LA.png", base.convert("LA")))
    good.append(save("e_palette_P.png", base.convert("P", palette=Image.ADAPTIVE)))
    good.append(save("f_cmyk.jpg", base.convert("CMYK"), quality=90))
    good.append(save("g_rgba.png", base.convert("RGBA")))
    sixteen = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    good.append(save("h_gray16.png", Image.fromarray(sixteen)))
    (root / "sub").mkdir(exist_ok=True)
    good.append(save("sub/i_nested.png", small))
    exif_path = root / "j_exif_rotated.jpg"
    exif_path.write_bytes(with_exif_orientation(base, 6))
    good.append(exif_path)

    truncated = root / "k_truncated.jpg"
    full = jpeg_bytes(photo("chelsea"), quality=90)
    truncated.write_bytes(full[: len(full) // 2])
    bad.append(truncated)
    garbage = root / "l_garbage.jpg"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    bad.append(garbage)
    text = root / "m_text_named.png"
    text.write_text("this is not an image\n")
    bad.append(text)
    empty = root / "n_empty.jpg"
    empty.write_bytes(b"")
    bad.append(empty)
    tiny = save("o_one_pixel.png", Image.new("RGB", (1, 1), (10, 20, 30)))
    bad.append(tiny)
    # A decompression bomb: 90 M pixels (over PIL's 89.5 M limit) in a small 1-bit PNG.
    bad.append(save("p_bomb.png", Image.new("1", (10_000, 9_000))))
    float_tiff = save("q_float.tif", Image.fromarray(np.zeros((8, 8), np.float32)))
    bad.append(float_tiff)

    notes = root / "notes.txt"
    notes.write_text("not an image, no image extension\n")
    skipped.append(notes)
    return {"good": good, "bad": bad, "skipped": skipped}
