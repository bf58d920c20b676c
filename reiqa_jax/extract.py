"""Re-IQA feature extraction, computed as the released demo scripts compute it.

For each image: ``Image.open(p).convert('RGB')`` (see :mod:`reiqa_jax.images`
for the cases the demos never met), a half scale by PIL's
``resize((w // 2, h // 2))``, both scales through the encoder in eval mode
(running BatchNorm statistics), feature = concat(full 2048, half 2048).
The quality encoder sees [0, 1] pixels; the content encoder sees
ImageNet-normalised ones. Re-IQA's final feature is content ⊕ quality.

Images keep their own size (no resizing, no cropping). To compile few
programs, each image is zero-padded to a bucket shape (:mod:`reiqa_jax.buckets`)
and run through the masked encoder (:mod:`reiqa_jax.models.masked`), which
gives the unpadded image's features; its half scale is padded to half the
bucket. Images of one bucket share batches. A batch holds at most
``batch_pixels`` padded pixels per device (by default sized to the device's
memory) and ``batch_size`` images; an image too large for any batch is
reported and skipped. Both encoders share one compiled program per
(bucket, batch size) when their architectures match, and JAX's persistent
compilation cache (:mod:`reiqa_jax.compile_cache`) keeps the programs for
the next run. Batches are split across all local devices.

Image headers are read first (to plan the batches); pixels are decoded in a
thread pool (PIL releases the GIL) one batch ahead of the device. An image
that cannot be used is reported and skipped; the others are still computed.
:meth:`FeatureExtractor.iter_batches` yields results batch by batch (the
``reiqa extract`` command streams them to disk); :meth:`FeatureExtractor.extract`
collects them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from reiqa_jax.buckets import bucket_shape, images_per_device, largest_power_of_two, split_batches
from reiqa_jax.compile_cache import enable_compile_cache
from reiqa_jax.feature_file import Features, load_features  # noqa: F401 (re-exported)
from reiqa_jax.images import (DEFAULT_MAX_PIXELS, ImageLoadError, LoadedImage, check_max_pixels,
                              image_size, load_image, too_many_pixels)
from reiqa_jax.models.masked import valid_regions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODER_INPUTS = {
    # name -> (mean, std) applied to [0, 1] pixels, as in the released demos.
    "quality": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "content": (IMAGENET_MEAN, IMAGENET_STD),
}

# Peak XLA working memory of one masked ResNet-50 (width 1) step per padded
# input pixel, from compiled.memory_analysis() on CPU (jax 0.10.2): 152 B
# in float32, 287 B in bfloat16 (XLA's CPU convolutions widen bfloat16 to
# float32). Wider encoders scale with their width. The default batch budget
# lets one step use MEMORY_FRACTION of the device's memory.
BYTES_PER_PIXEL = {"float32": 160, "bfloat16": 300}
MEMORY_FRACTION = 0.5
_FALLBACK_MEMORY = 16 << 30


def device_memory(device: jax.Device) -> int:
    """Bytes of memory a device can use: its own for accelerators, the machine's RAM for CPU."""
    if device.platform != "cpu":
        try:
            return int(device.memory_stats()["bytes_limit"])
        except Exception:  # noqa: BLE001 - not every backend reports memory
            return _FALLBACK_MEMORY
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = _FALLBACK_MEMORY
    try:  # a container's limit, when there is one
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        if limit.isdigit():
            memory = min(memory, int(limit))
    except OSError:
        pass
    return memory


def default_batch_pixels(device: jax.Device | None = None, dtype: str = "float32",
                         width: float = 1.0) -> int:
    """Padded pixels per device step that fit in MEMORY_FRACTION of the device's memory."""
    device = device or jax.local_devices()[0]
    per_pixel = BYTES_PER_PIXEL.get(dtype, BYTES_PER_PIXEL["float32"]) * max(1.0, width)
    return max(1, int(device_memory(device) * MEMORY_FRACTION / per_pixel))


@dataclasses.dataclass
class BatchResult:
    """What one batch gave: features of ``indices`` (input order within the batch), failures.

    features: {encoder name: (len(indices), 2 * D) float32}. failures:
    [(input index, one-line reason)].
    """

    indices: list[int]
    features: dict[str, np.ndarray]
    failures: list[tuple[int, str]]


@dataclasses.dataclass
class _Batch:
    indices: list[int]
    shape: tuple[int, int]  # padded full-scale (H, W)
    slots: int  # batch size, including empty slots for the last devices


@functools.partial(jax.jit, static_argnums=0)
def _encode(graphdef, state, images, regions, mean, std):
    """(B, H, W, 3) uint8 padded images -> (B, D) float32 encoder features, eval mode.

    regions: ``valid_regions`` of the images. Module-level, so every
    extractor of the same architecture shares its compilations.
    """
    from reiqa_jax.models.masked import masked_features

    x = (images.astype(jnp.float32) / 255.0 - mean) / std
    return masked_features(nnx.merge(graphdef, state).encoder, x, regions).astype(jnp.float32)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _dtype_name(dtype) -> str:
    return "bfloat16" if jnp.dtype(dtype) == jnp.bfloat16 else "float32"


class FeatureExtractor:
    """Runs one or two Re-IQA encoders over image files.

    quality_model / content_model: ReIQAModel (or anything with ``.encoder``,
    a ResNet) whose BatchNorm is switched to eval mode here.
    batch_size: most images per step (rounded to a power of two per device).
    batch_pixels: most padded full-scale pixels per device step (default:
    sized to the device's memory, :func:`default_batch_pixels`).
    buckets_per_octave: padding grid (:mod:`reiqa_jax.buckets`); 0 runs every
    image at its own size. compile_cache: use JAX's persistent compilation
    cache (:mod:`reiqa_jax.compile_cache`).
    """

    def __init__(self, *, quality_model=None, content_model=None, batch_size: int = 8,
                 exif_transpose: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                 num_workers: int = 4, devices: Sequence[jax.Device] | None = None,
                 batch_pixels: int | None = None, buckets_per_octave: int = 4,
                 compile_cache: bool = True):
        models = {"quality": quality_model, "content": content_model}
        self._encoders = {}
        self._geometry = {}
        self.feature_dims: dict[str, int] = {}
        for name, model in models.items():
            if model is not None:
                model.eval()
                self.feature_dims[name] = 2 * model.encoder.feat_dim
                self._geometry[name] = model.encoder
                self._encoders[name] = nnx.split(model)
        if not self._encoders:
            raise ValueError("at least one of quality_model / content_model is needed")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if buckets_per_octave < 0:
            raise ValueError(f"buckets_per_octave must be >= 0, got {buckets_per_octave}")
        devices = list(devices or jax.local_devices())
        self.devices = devices
        self.per_device = largest_power_of_two(-(-batch_size // len(devices)))
        self.batch_size = self.per_device * len(devices)
        if batch_pixels is None:
            encoder = next(iter(self._geometry.values()))
            batch_pixels = default_batch_pixels(
                devices[0], _dtype_name(encoder.dtype),
                max(float(e.width) for e in self._geometry.values()))
        if batch_pixels < 1:
            raise ValueError(f"batch_pixels must be positive, got {batch_pixels}")
        self.batch_pixels = int(batch_pixels)
        self.buckets_per_octave = int(buckets_per_octave)
        mesh = Mesh(np.asarray(devices), ("data",))
        self._batch_sharding = NamedSharding(mesh, P("data"))
        self._replicated = NamedSharding(mesh, P())
        self._encoders = {
            name: (graphdef, jax.device_put(state, self._replicated))
            for name, (graphdef, state) in self._encoders.items()
        }
        self._constants = {
            name: tuple(jax.device_put(np.asarray(v, np.float32), self._replicated)
                        for v in stats)
            for name, stats in ENCODER_INPUTS.items()
        }
        self.exif_transpose = exif_transpose
        self.max_pixels = check_max_pixels(max_pixels)
        self.num_workers = max(1, num_workers)
        self.compile_cache = enable_compile_cache() if compile_cache else None

    # -- pieces ---------------------------------------------------------------

    def _load(self, path: str) -> LoadedImage | ImageLoadError:
        try:
            return load_image(path, exif_transpose=self.exif_transpose, max_pixels=self.max_pixels)
        except ImageLoadError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
            return ImageLoadError(_one_line(exc))

    def _size(self, path: str) -> tuple[int, int] | str:
        try:
            return image_size(path, exif_transpose=self.exif_transpose)
        except ImageLoadError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
            return _one_line(exc)

    def too_large(self, height: int, width: int) -> str:
        """The one-line reason an image of (height, width) fits no batch."""
        return (f"image is {width}x{height} = {width * height} pixels, more than the limit of "
                f"{self.batch_pixels} pixels per batch (batch_pixels, --batch-pixels; the "
                f"default is sized to the device's memory)")

    def _fit(self, height: int, width: int) -> tuple[tuple[int, int], int] | None:
        """(padded shape, images per device) for an image, or None if it fits no batch."""
        shape = bucket_shape(height, width, self.buckets_per_octave)
        per_device = images_per_device(shape[0] * shape[1], self.batch_pixels, self.per_device)
        if per_device == 0:  # padding would not fit: try the image at its own size
            shape = (height, width)
            per_device = images_per_device(height * width, self.batch_pixels, self.per_device)
        return (shape, per_device) if per_device else None

    def plan(self, paths: Sequence[str], report: Callable[[int, str], None],
             pool: concurrent.futures.Executor | None = None) -> list[_Batch]:
        """Batches of input indices from the image headers; unusable inputs are reported."""
        sizes = (pool.map(self._size, paths) if pool is not None else map(self._size, paths))
        groups: dict[tuple[int, int], list[int]] = {}
        capacity: dict[tuple[int, int], int] = {}
        for index, size in enumerate(sizes):
            if isinstance(size, str):
                report(index, size)
                continue
            if size[0] * size[1] > self.max_pixels:
                report(index, too_many_pixels(size[1], size[0], self.max_pixels))
                continue
            fit = self._fit(*size)
            if fit is None:
                report(index, self.too_large(*size))
                continue
            shape, per_device = fit
            groups.setdefault(shape, []).append(index)
            capacity[shape] = per_device
        batches = []
        for shape, members in groups.items():
            start = 0
            for slots in split_batches(len(members), capacity[shape], len(self.devices)):
                chunk = members[start:start + slots]
                batches.append(_Batch(chunk, shape, slots))
                start += len(chunk)
        return batches

    def _dispatch(self, images: list[LoadedImage], shape: tuple[int, int],
                  slots: int) -> dict[str, list[jax.Array]]:
        """Pads one batch into ``shape`` and queues it; returns device arrays [full, half] (slots, D)."""
        height, width = shape
        scales = []
        for scale_shape, pick in (((height, width), lambda im: im.full),
                                  ((height // 2, width // 2), lambda im: im.half)):
            pixels = np.zeros((slots, *scale_shape, 3), np.uint8)
            sizes = np.zeros((slots, 2), np.int64)
            for row, image in enumerate(images):
                array = pick(image)
                pixels[row, :array.shape[0], :array.shape[1]] = array
                sizes[row] = array.shape[:2]
            scales.append((jax.device_put(pixels, self._batch_sharding), sizes, scale_shape))
        out = {}
        regions_cache = {}
        for name, (graphdef, state) in self._encoders.items():
            mean, std = self._constants[name]
            features = []
            for pixels, sizes, scale_shape in scales:
                key = (graphdef, scale_shape)
                if key not in regions_cache:
                    regions = valid_regions(self._geometry[name], sizes, scale_shape)
                    regions_cache[key] = jax.device_put(regions, regions._replace(
                        masks=jax.tree.map(lambda _: self._batch_sharding, regions.masks),
                        one=self._replicated))
                features.append(_encode(graphdef, state, pixels, regions_cache[key], mean, std))
            out[name] = features  # concatenated on the host: no extra program to compile
        return out

    # -- the whole job --------------------------------------------------------

    def iter_batches(self, paths: Sequence[str], *,
                     on_error: Callable[[str, str], None] | None = None
                     ) -> Iterator[BatchResult]:
        """Features for ``paths``, one :class:`BatchResult` at a time (batch order, not input order).

        Unusable inputs come as failures (first those found from the headers,
        then those found while decoding). Stopping the iteration early
        (``close()``) cancels the decoding that has not started.
        """
        paths = [str(p) for p in paths]

        def report(index: int, message: str, into: list) -> None:
            into.append((index, message))
            if on_error is not None:
                on_error(paths[index], message)

        pool = concurrent.futures.ThreadPoolExecutor(self.num_workers)
        try:
            early: list[tuple[int, str]] = []
            batches = self.plan(paths, lambda i, m: report(i, m, early), pool)
            if early:
                yield BatchResult([], {}, early)
            loads = [pool.map(self._load, [paths[i] for i in batches[0].indices])] if batches else []
            pending = None
            for number, batch in enumerate(batches):
                if number + 1 < len(batches):  # decode the next batch while this one runs
                    loads.append(pool.map(self._load, [paths[i] for i in batches[number + 1].indices]))
                failures: list[tuple[int, str]] = []
                fits, misfits = [], []
                for index, loaded in zip(batch.indices, loads[number]):
                    if isinstance(loaded, ImageLoadError):
                        report(index, str(loaded), failures)
                    elif (loaded.full.shape[0] <= batch.shape[0]
                          and loaded.full.shape[1] <= batch.shape[1]):
                        fits.append((index, loaded))
                    else:  # the header disagreed with the pixels: run it on its own
                        misfits.append((index, loaded))
                loads[number] = None
                dispatched = []
                if fits:
                    dispatched.append(([i for i, _ in fits], self._dispatch(
                        [image for _, image in fits], batch.shape, batch.slots)))
                for index, image in misfits:
                    fit = self._fit(*image.full.shape[:2])
                    if fit is None:
                        report(index, self.too_large(*image.full.shape[:2]), failures)
                    else:
                        dispatched.append(([index], self._dispatch(
                            [image], fit[0], len(self.devices))))
                if pending is not None:  # the previous batch, now that this one is queued
                    yield _collect(*pending)
                pending = (dispatched, failures)
            if pending is not None:
                yield _collect(*pending)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def extract(self, paths: Sequence[str], *, progress: bool = True,
                on_error: Callable[[str, str], None] | None = None) -> Features:
        """Features for ``paths`` (input order kept); bad images are reported and skipped."""
        paths = [str(p) for p in paths]
        failures: dict[int, str] = {}
        rows: dict[str, dict[int, np.ndarray]] = {name: {} for name in self._encoders}
        with tqdm(total=len(paths), disable=not progress, unit="img", file=sys.stderr) as bar:
            for result in self.iter_batches(paths, on_error=on_error):
                failures.update(result.failures)
                for name, values in result.features.items():
                    rows[name].update(zip(result.indices, values))
                bar.update(len(result.indices) + len(result.failures))
        done = sorted(rows[next(iter(rows))])
        result = {name: (np.stack([values[i] for i in done]).astype(np.float32) if done
                         else np.zeros((0, self.feature_dims[name]), np.float32))
                  for name, values in rows.items()}
        failed = sorted(failures)
        return Features(
            paths=[paths[i] for i in done],
            quality=result.get("quality"),
            content=result.get("content"),
            failed=[paths[i] for i in failed],
            errors=[failures[i] for i in failed],
        )


def wait_until_ready(arrays: Sequence[jax.Array], poll: float = 0.02) -> None:
    """Waits for device arrays in short sleeps, so that signal handlers run meanwhile."""
    for array in arrays:
        while not array.is_ready():
            time.sleep(poll)


def _collect(dispatched, failures) -> BatchResult:
    indices: list[int] = []
    features: dict[str, list[np.ndarray]] = {}
    for batch_indices, outputs in dispatched:
        wait_until_ready([array for scales in outputs.values() for array in scales])
        indices.extend(batch_indices)
        for name, scales in outputs.items():
            value = np.concatenate([np.asarray(array) for array in scales], axis=1)
            features.setdefault(name, []).append(value[:len(batch_indices)])
    return BatchResult(indices, {name: np.concatenate(parts).astype(np.float32)
                                 for name, parts in features.items()}, failures)


def extract_features(paths: Sequence[str], *, quality_ckpt=None, content_ckpt=None,
                     batch_size: int = 8, dtype: str = "float32", exif_transpose: bool = False,
                     max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False,
                     on_error: Callable[[str, str], None] | None = None,
                     batch_pixels: int | None = None, buckets_per_octave: int = 4) -> Features:
    """Python API: Re-IQA features of image files from checkpoint directories.

    quality_ckpt / content_ckpt: directories written by ``reiqa convert`` (or
    training); at least one. dtype: compute dtype, "float32" or "bfloat16".
    Returns :class:`Features` with numpy arrays (``quality_ckpt`` /
    ``content_ckpt`` hold the absolute checkpoint paths).
    """
    from reiqa_jax.checkpoint import load_model

    compute = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype]
    extractor = FeatureExtractor(
        quality_model=load_model(quality_ckpt, dtype=compute) if quality_ckpt else None,
        content_model=load_model(content_ckpt, dtype=compute) if content_ckpt else None,
        batch_size=batch_size, exif_transpose=exif_transpose, max_pixels=max_pixels,
        batch_pixels=batch_pixels, buckets_per_octave=buckets_per_octave)
    features = extractor.extract(paths, progress=progress, on_error=on_error)
    features.quality_ckpt = os.path.abspath(quality_ckpt) if quality_ckpt else ""
    features.content_ckpt = os.path.abspath(content_ckpt) if content_ckpt else ""
    return features
