"""Re-IQA feature extraction, computed as the released demo scripts compute it.

For each image: ``Image.open(p).convert('RGB')`` (see :mod:`reiqa_jax.images`
for the cases the demos never met), a half scale by PIL's
``resize((w // 2, h // 2))``, both scales through the encoder in eval mode
(running BatchNorm statistics), feature = concat(full 2048, half 2048).
The quality encoder sees [0, 1] pixels; the content encoder sees
ImageNet-normalised ones. Re-IQA's final feature is content ⊕ quality.

Images keep their own size (no resizing, no cropping). To compile few
programs, images are zero-padded and run through the masked encoder
(:mod:`reiqa_jax.models.masked`), which gives each image's own features:

* a bucket with at least ``CANVAS_BELOW`` images runs in full batches of its
  bucket shape (:mod:`reiqa_jax.buckets`), the half scales in half that shape;
* every other image (sparse buckets, the rest of a bucket) that fits a
  canvas is packed, both scales, with others of any size into canvases of
  one shape, so that a folder of many sizes needs one program instead of one
  per size; larger ones run in batches of their bucket.

A batch holds at most ``batch_pixels`` padded pixels per device (by default
sized to the device's memory) and ``batch_size`` images per bucket batch; an
image too large for any batch is reported and skipped. Both encoders share
one compiled program per (shape, batch size) when their architectures match,
and JAX's persistent compilation cache (:mod:`reiqa_jax.compile_cache`) keeps
the programs for the next run. On CPU, steps that the memory allows compile
with XLA's own convolutions instead of YNNPACK's (``NO_YNNPACK``: faster,
more working memory). Batches are split across all local devices;
on CPU, two encoders of one architecture run side by side as one program,
each on one half of the (virtual) devices (``encoder_devices``;
:mod:`reiqa_jax.cpu_devices`), so that each shape still compiles once;
steps of more than ``CONCURRENT_MAX_PIXELS`` padded pixels run one encoder
at a time on the first half, so that a large image needs one encoder's
working memory.

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

from reiqa_jax.buckets import (bucket_shape, cut_height, fits_canvas, images_per_device,
                               largest_power_of_two, pack, split_batches)
from reiqa_jax.compile_cache import enable_compile_cache
from reiqa_jax.dtypes import dtype_name, inference_dtype
from reiqa_jax.errors import one_line
from reiqa_jax.scoring.features import Features
from reiqa_jax.images import (DEFAULT_MAX_PIXELS, ImageLoadError, LoadedImage, check_max_pixels,
                              image_size, load_image, too_many_pixels)
from reiqa_jax.models.masked import ALIGN, masked_stages, pool_regions, valid_regions
from reiqa_jax.normalize import IMAGENET_MEAN, IMAGENET_STD, to_unit_float

ENCODER_INPUTS = {
    # name -> (mean, std) applied to [0, 1] pixels, as in the released demos.
    "quality": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "content": (IMAGENET_MEAN, IMAGENET_STD),
}

# Upper bound of XLA's working memory for one masked ResNet-50 (width 1)
# step, per padded input pixel, with XLA's default CPU pipeline (see
# NO_YNNPACK for the other); bfloat16 needs more because XLA's CPU
# convolutions widen it to float32. tests/test_masked.py checks the float32
# bound against compiled.memory_analysis(); figures in benchmarks/RESULTS.md.
# Wider encoders scale with their width. The default batch budget lets one
# step use MEMORY_FRACTION of the device's memory.
BYTES_PER_PIXEL = {"float32": 160, "bfloat16": 300}
MEMORY_FRACTION = 0.5
# Compiler options of a CPU step without YNNPACK, the library that XLA's CPU
# backend hands convolutions and dots to by default: XLA's own (Eigen)
# convolutions run a whole extraction faster on our CPUs but need more
# working memory (NO_YNNPACK_MEMORY times the default's), and give features
# that differ by float32 rounding (benchmarks/extract_devices.py; figures in
# benchmarks/RESULTS.md). A step compiles with them when it is not large
# (CONCURRENT_MAX_PIXELS) and that memory still fits the batch's budget;
# large steps keep the smaller footprint. Accelerators are unaffected.
NO_YNNPACK = {"xla_cpu_experimental_ynn_fusion_type": ""}
NO_YNNPACK_MEMORY = 1.4
# A bucket with fewer images than this does not get programs of its own: its
# images go into canvases of CANVAS_SHAPE (smaller when batch_pixels is).
CANVAS_BELOW = 8
CANVAS_SHAPE = (1024, 1024)
# Encoders on devices of their own run concurrently only in steps up to this
# many padded pixels per device; larger steps (large images) run one encoder
# at a time, so that peak memory stays that of one encoder.
CONCURRENT_MAX_PIXELS = 4 * 1024 * 1024
ENCODER_DEVICES = ("auto", "shared", "split")
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
                         width: float = 1.0, sharing: int = 1) -> int:
    """Padded pixels per device step that fit in MEMORY_FRACTION of the device's memory.

    sharing: devices that share that memory and compute at once (the virtual
    CPU devices of one machine).
    """
    device = device or jax.local_devices()[0]
    per_pixel = BYTES_PER_PIXEL.get(dtype, BYTES_PER_PIXEL["float32"]) * max(1.0, width)
    return max(1, int(device_memory(device) * MEMORY_FRACTION / per_pixel / max(1, sharing)))


@dataclasses.dataclass(frozen=True)
class _Shardings:
    """Where a program runs: the mesh of its devices, and how values go onto it
    (the batch split over them, copies of the rest).

    The mesh is ("data",) for one encoder, ("encoder", "data") for two
    encoders side by side (one row of devices each); the batch is split over
    "data" either way, and copied to both rows.
    """

    mesh: Mesh
    batch: NamedSharding
    replicated: NamedSharding

    @classmethod
    def over(cls, devices, encoders: int = 1) -> "_Shardings":
        devices = np.asarray(devices)
        mesh = (Mesh(devices, ("data",)) if encoders == 1 else
                Mesh(devices.reshape(encoders, -1), ("encoder", "data")))
        return cls(mesh, NamedSharding(mesh, P("data")), NamedSharding(mesh, P()))

    @property
    def devices(self) -> tuple:
        """The devices of one encoder (the first row)."""
        return tuple(self.mesh.devices.reshape(-1, self.mesh.devices.shape[-1])[0])

    def per_encoder(self) -> NamedSharding:
        """Values stacked on a leading encoder axis, one row of devices each."""
        return NamedSharding(self.mesh, P("encoder"))

    def put_per_encoder(self, trees: Sequence):
        """Pytrees of one structure, one per encoder, as one pytree of arrays
        stacked on a leading axis split over "encoder" (:meth:`per_encoder`).

        Each row of devices receives its own encoder's values: nothing is
        stacked on the host (a copy of every weight of both encoders).
        """
        sharding = self.per_encoder()
        leaves = [jax.tree.leaves(tree) for tree in trees]
        rows = sharding.addressable_devices_indices_map((len(trees),))
        held = {device: jax.device_put([np.asarray(leaf)[None] for leaf in leaves[index[0].start]],
                                       device)
                for device, index in rows.items()}
        stacked = [jax.make_array_from_single_device_arrays(
                       (len(trees), *np.shape(leaf)), sharding,
                       [held[device][number] for device in rows])
                   for number, leaf in enumerate(leaves[0])]
        return jax.tree.unflatten(jax.tree.structure(trees[0]), stacked)

    def put_regions(self, regions):
        """:class:`ValidRegions` on the devices: masks split like the batch, ``one`` copied."""
        return jax.device_put(regions, _regions_like(regions, self.batch, self.replicated))


def _regions_like(regions, batch, one):
    """``regions``' structure with ``batch`` for every mask and ``one`` for ``one``.

    (shardings for device_put, partition specs for shard_map)
    """
    return regions._replace(masks=tuple(batch for _ in regions.masks), one=one)


@dataclasses.dataclass
class BatchResult:
    """What one batch gave: features of ``indices`` (input order within the batch), failures.

    features: {encoder name: (len(indices), 2 * D) float32}. failures:
    [(input index, one-line reason)].
    """

    indices: list[int]
    features: dict[str, np.ndarray]
    failures: list[tuple[int, str]]


@dataclasses.dataclass(frozen=True)
class _PlacedImage:
    """One image at one scale, placed in a step.

    index: input index; scale: 0 full, 1 half; top, left: where it goes;
    height, width: the room it has (the image's size from its header in a
    canvas, the whole padded shape in a bucket batch).
    """

    index: int
    scale: int
    top: int
    left: int
    height: int
    width: int


@dataclasses.dataclass
class _Step:
    """One run of the encoders: ``len(slots)`` padded images of ``shape`` (H, W).

    Each slot holds the images placed in it: one at (0, 0) in a bucket batch,
    several in a canvas, none in an empty slot (that fills the last devices).
    """

    shape: tuple[int, int]
    slots: list[list[_PlacedImage]]

    @property
    def indices(self) -> list[int]:
        return list(dict.fromkeys(place.index for slot in self.slots for place in slot))


class _Architecture:
    """A model's graphdef as jit's static argument, hashed once.

    jit hashes its static arguments on every call, and hashing a ResNet-50
    graphdef is slow enough to show in a profile of a mixed-size run; equal
    graphdefs share one instance (:meth:`of`), so that lookups compare by
    identity.
    """

    _known: list["_Architecture"] = []

    def __init__(self, graphdef):
        self.graphdef = graphdef
        self._hash = hash(graphdef)

    @classmethod
    def of(cls, graphdef) -> "_Architecture":
        for known in cls._known:
            if known._hash == hash(graphdef) and known.graphdef == graphdef:
                return known
        cls._known.append(cls(graphdef))
        return cls._known[-1]

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, _Architecture) and self._hash == other._hash
                                 and self.graphdef == other.graphdef)


def _forward(architecture, state, images, regions, mean, std):
    """(B, H, W, 3) uint8 padded images -> the last activation (B, H/32, W/32, D) float32.

    Zero outside the images; :func:`pool_regions` averages each image's
    region. regions: ``valid_regions`` of the images.
    """
    x = (to_unit_float(images) - mean) / std
    encoder = nnx.merge(architecture.graphdef, state).encoder
    return masked_stages(encoder, x, regions)[-1].astype(jnp.float32)


# Module-level, so that every extractor of the same architecture shares the compilations.
_encode = jax.jit(_forward, static_argnums=0)
_encode_no_ynnpack = jax.jit(_forward, static_argnums=0, compiler_options=NO_YNNPACK)


def _pair_forward(architecture, mesh, states, images, regions, means, stds):
    """Two encoders of one architecture at once, one per row of ``mesh`` ("encoder", "data").

    states, means, stds: the encoders' values stacked on a leading axis of 2;
    images and regions as for :func:`_forward`, split over "data". Returns
    (2, B, H/32, W/32, D): one compiled program serves both encoders, so a
    shape compiles once, not once per row of devices.
    """
    def one_row(state, images, regions, mean, std):
        state = jax.tree.map(lambda leaf: leaf[0], state)
        return _forward(architecture, state, images, regions, mean[0], std[0])[None]

    batch, stacked = P("data"), P("encoder")
    return jax.shard_map(one_row, mesh=mesh,
                         in_specs=(stacked, batch, _regions_like(regions, batch, P()), stacked,
                                   stacked),
                         out_specs=P("encoder", "data"))(states, images, regions, means, stds)


_encode_pair = jax.jit(_pair_forward, static_argnums=(0, 1))
_encode_pair_no_ynnpack = jax.jit(_pair_forward, static_argnums=(0, 1),
                                  compiler_options=NO_YNNPACK)


class FeatureExtractor:
    """Runs one or two Re-IQA encoders over image files.

    quality_model / content_model: ReIQAModel (or anything with ``.encoder``,
    a ResNet) whose BatchNorm is switched to eval mode here.
    batch_size: most images per step (rounded to a power of two per device).
    batch_pixels: most padded full-scale pixels per device step (default:
    sized to the device's memory, :func:`default_batch_pixels`).
    buckets_per_octave: padding grid (:mod:`reiqa_jax.buckets`); 0 runs every
    image at its own size (and packs no canvases). canvases: pack the images
    of sparse buckets together (see the module docstring); False gives every
    bucket batches of its own. compile_cache: use JAX's persistent
    compilation cache (:mod:`reiqa_jax.compile_cache`).
    devices: the devices to use (default: all local ones). encoder_devices:
    "shared": every encoder splits each batch over all ``devices``;
    "split": two encoders of one architecture run at the same time, as one
    program, each on half of ``devices`` (steps up to ``CONCURRENT_MAX_PIXELS``
    per device; larger ones run one encoder at a time on the first half);
    other encoders share; "auto" (default): "split" on CPU, where the devices
    are virtual ones over the same cores (:mod:`reiqa_jax.cpu_devices`),
    "shared" on accelerators. low_memory: on CPU, compile every step with
    XLA's default pipeline (less working memory, slower; see ``NO_YNNPACK``).
    """

    def __init__(self, *, quality_model=None, content_model=None, batch_size: int = 8,
                 exif_transpose: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                 num_workers: int = 4, devices: Sequence[jax.Device] | None = None,
                 batch_pixels: int | None = None, buckets_per_octave: int = 4,
                 canvases: bool = True, compile_cache: bool = True,
                 encoder_devices: str = "auto", low_memory: bool = False):
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
        if encoder_devices not in ENCODER_DEVICES:
            raise ValueError(f"encoder_devices must be one of {ENCODER_DEVICES}, "
                             f"got {encoder_devices!r}")
        devices = list(devices or jax.local_devices())
        if encoder_devices == "auto":
            encoder_devices = "split" if devices[0].platform == "cpu" else "shared"
        architectures = {name: _Architecture.of(graphdef)
                         for name, (graphdef, _) in self._encoders.items()}
        paired = (encoder_devices == "split" and len(devices) >= 2
                  and len(architectures) == 2 and len(set(architectures.values())) == 1)
        # Side by side: one program, one row of devices per encoder. One
        # encoder's programs run on the first row (all devices when shared).
        self._pair = _Shardings.over(devices[:len(devices) // 2 * 2], 2) if paired else None
        self._shardings = _Shardings.over(self._pair.devices if paired else devices)
        self.encoders_concurrent = paired
        self._no_ynnpack = devices[0].platform == "cpu" and not low_memory
        self.devices = list(self._shardings.devices)  # one encoder's
        self.per_device = largest_power_of_two(-(-batch_size // len(self.devices)))
        self.batch_size = self.per_device * len(self.devices)
        if batch_pixels is None:
            encoder = next(iter(self._geometry.values()))
            batch_pixels = default_batch_pixels(
                devices[0], dtype_name(encoder.dtype),
                max(float(e.width) for e in self._geometry.values()),
                sharing=len(devices) if devices[0].platform == "cpu" else 1)
        if batch_pixels < 1:
            raise ValueError(f"batch_pixels must be positive, got {batch_pixels}")
        self.batch_pixels = int(batch_pixels)
        self.buckets_per_octave = int(buckets_per_octave)
        self._states = {name: state for name, (_, state) in self._encoders.items()}
        self._encoders = architectures
        self._singles: dict[str, tuple] = {}  # see _single
        if paired:
            self._stacked = self._pair.put_per_encoder(
                [(self._states[name], *(np.asarray(v, np.float32) for v in ENCODER_INPUTS[name]))
                 for name in self._encoders])
        else:
            for name in self._encoders:
                self._single(name)
        self._in_flight: list[jax.Array] = []  # outputs of the last step dispatched
        self._in_flight_large = False
        self.exif_transpose = exif_transpose
        self.max_pixels = check_max_pixels(max_pixels)
        self.num_workers = max(1, num_workers)
        self.compile_cache = enable_compile_cache() if compile_cache else None
        self.canvas = None  # exact sizes: no canvases
        if self.buckets_per_octave and canvases:
            side = min(CANVAS_SHAPE[0], int(self.batch_pixels ** 0.5) // ALIGN * ALIGN)
            self.canvas = (side, side * CANVAS_SHAPE[1] // CANVAS_SHAPE[0]) if side else None

    # -- pieces ---------------------------------------------------------------

    def _single(self, name: str) -> tuple:
        """(architecture, state, mean, std) of one encoder on the one-encoder devices.

        Put there at start when encoders share the devices; with encoders side
        by side only for the first large step (their stacked copy serves the rest).
        """
        if name not in self._singles:
            self._singles[name] = (self._encoders[name], *jax.device_put(
                (self._states[name], *(np.asarray(v, np.float32) for v in ENCODER_INPUTS[name])),
                self._shardings.replicated))
        return self._singles[name]

    def _load(self, path: str) -> LoadedImage | ImageLoadError:
        try:
            return load_image(path, exif_transpose=self.exif_transpose, max_pixels=self.max_pixels)
        except ImageLoadError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
            return ImageLoadError(one_line(exc, with_type=True))

    def _size(self, path: str) -> tuple[int, int] | str:
        try:
            return image_size(path, exif_transpose=self.exif_transpose)
        except ImageLoadError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
            return one_line(exc, with_type=True)

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

    def _in_canvas(self, height: int, width: int) -> bool:
        return (self.canvas is not None and fits_canvas(height, width, self.canvas)
                and fits_canvas(height // 2, width // 2, self.canvas))

    def _bucket_steps(self, indices: list[int], shape: tuple[int, int],
                      slots: int) -> list[_Step]:
        """A full-scale step of ``shape`` and a half-scale step of half that shape."""
        steps = []
        for scale in (0, 1):
            height, width = shape[0] // (1 + scale), shape[1] // (1 + scale)
            steps.append(_Step((height, width),
                               [[_PlacedImage(i, scale, 0, 0, height, width)] for i in indices]
                               + [[] for _ in range(slots - len(indices))]))
        return steps

    def _canvas_steps(self, indices: list[int], sizes: dict[int, tuple[int, int]]) -> list[_Step]:
        """Both scales of ``indices`` packed into canvases, one canvas per device per step."""
        items = [(index, scale, sizes[index][0] // (1 + scale), sizes[index][1] // (1 + scale))
                 for index in indices for scale in (0, 1)]
        canvases = [[_PlacedImage(*items[item][:2], top, left, *items[item][2:])
                     for item, top, left in canvas]
                    for canvas in pack([item[2:] for item in items], self.canvas)]
        devices = len(self.devices)
        steps = []
        for start in range(0, len(canvases), devices):
            group = canvases[start:start + devices]
            used = max(place.top + place.height for canvas in group for place in canvas)
            # The last canvases are often part-filled: cut them to the height used.
            height = cut_height(used, self.canvas[0])
            steps.append(_Step((height, self.canvas[1]),
                               group + [[] for _ in range(devices - len(group))]))
        return steps

    def plan(self, paths: Sequence[str], report: Callable[[int, str], None],
             pool: concurrent.futures.Executor | None = None) -> list[_Step]:
        """The steps for ``paths``, from the image headers; unusable inputs are reported."""
        sizes = (pool.map(self._size, paths) if pool is not None else map(self._size, paths))
        known: dict[int, tuple[int, int]] = {}
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
            known[index] = size
            shape, per_device = fit
            groups.setdefault(shape, []).append(index)
            capacity[shape] = per_device
        steps, canvas = [], []
        devices = len(self.devices)
        for shape, members in groups.items():
            full = capacity[shape] * devices
            bucketed = len(members) // full * full if len(members) >= CANVAS_BELOW else 0
            rest = [i for i in members[bucketed:] if self._in_canvas(*known[i])]
            alone = [i for i in members[bucketed:] if not self._in_canvas(*known[i])]
            canvas.extend(rest)
            for chunk in (members[:bucketed], alone):
                start = 0
                for slots in split_batches(len(chunk), capacity[shape], devices):
                    part = chunk[start:start + slots]
                    steps.extend(self._bucket_steps(part, shape, slots))
                    start += len(part)
        if canvas:
            steps.extend(self._canvas_steps(canvas, known))
        return steps

    def _dispatch(self, step: _Step, images: dict[int, LoadedImage]):
        """Pads one step and queues it on the devices.

        Returns (places, {encoder: device array of the last activation}, rects):
        the images run, and their regions at the last resolution.
        """
        pixels = np.zeros((len(step.slots), *step.shape, 3), np.uint8)
        placements, places = [], []
        for row, slot in enumerate(step.slots):
            rects = []
            for place in slot:
                array = images[place.index].half if place.scale else images[place.index].full
                height, width = array.shape[:2]
                pixels[row, place.top:place.top + height, place.left:place.left + width] = array
                rects.append((place.top, place.left, height, width))
                places.append(place)
            placements.append(rects)
        per_device = step.shape[0] * step.shape[1] * len(step.slots) // len(self.devices)
        large = per_device > CONCURRENT_MAX_PIXELS
        fits_without_ynnpack = not large and per_device * NO_YNNPACK_MEMORY <= self.batch_pixels
        out: dict = {}
        if self._pair is not None and not large:
            if self._in_flight_large:  # never beside a large step
                wait_until_ready(self._in_flight)
            regions, rects_out = valid_regions(next(iter(self._geometry.values())), placements,
                                               step.shape)
            states, means, stds = self._stacked
            out[tuple(self._encoders)] = self._call(
                fits_without_ynnpack, _encode_pair_no_ynnpack, _encode_pair,
                next(iter(self._encoders.values())), self._pair.mesh, states,
                jax.device_put(pixels, self._pair.batch), self._pair.put_regions(regions), means,
                stds)
        else:
            pixels, regions_on = jax.device_put(pixels, self._shardings.batch), {}
            for name in self._encoders:
                architecture, state, mean, std = self._single(name)
                if architecture not in regions_on:
                    regions, rects_out = valid_regions(self._geometry[name], placements,
                                                       step.shape)
                    regions_on[architecture] = self._shardings.put_regions(regions)
                if self.encoders_concurrent:
                    # A large step: one encoder program at a time (and none beside the
                    # previous step's), so that peak memory is one encoder's working memory.
                    wait_until_ready(self._in_flight + list(out.values()))
                out[name] = self._call(fits_without_ynnpack, _encode_no_ynnpack, _encode,
                                       architecture, state, pixels, regions_on[architecture],
                                       mean, std)
        self._in_flight, self._in_flight_large = list(out.values()), large
        return places, out, rects_out

    def _call(self, fits_without_ynnpack: bool, without_ynnpack, default, *args):
        """``without_ynnpack(*args)`` for a step whose memory budget has room for
        it, unless NO_YNNPACK is off (accelerators, ``low_memory``), else
        ``default(*args)``.

        An XLA that does not know the NO_YNNPACK options (or any compile that
        fails with them) turns them off for the rest of the run: the step
        runs again with the default.
        """
        if fits_without_ynnpack and self._no_ynnpack:
            try:
                return without_ynnpack(*args)
            except jax.errors.JaxRuntimeError:
                self._no_ynnpack = False
        return default(*args)

    def iter_batches(self, paths: Sequence[str], *,
                     on_error: Callable[[str, str], None] | None = None
                     ) -> Iterator[BatchResult]:
        """Features for ``paths``, one :class:`BatchResult` at a time (not in input order).

        An image is yielded once both its scales are done. Unusable inputs
        come as failures (first those found from the headers, then those found
        while decoding). Stopping the iteration early (``close()``) cancels
        the decoding that has not started.
        """
        paths = [str(p) for p in paths]
        failed: set[int] = set()
        redo: set[int] = set()  # images whose pixels are larger than their header says
        dedicated: set[int] = set()  # ids of the steps that run those on their own
        done: dict[int, dict[str, list]] = {}

        def report(index: int, message: str, into: list) -> None:
            if index not in failed:
                failed.add(index)
                into.append((index, message))
                if on_error is not None:
                    on_error(paths[index], message)

        pool = concurrent.futures.ThreadPoolExecutor(self.num_workers)
        try:
            early: list[tuple[int, str]] = []
            steps = self.plan(paths, lambda i, m: report(i, m, early), pool)
            if early:
                yield BatchResult([], {}, early)
            loads: dict[int, Iterator] = {}

            def decode(number: int) -> None:
                if number < len(steps) and number not in loads:
                    loads[number] = pool.map(self._load,
                                             [paths[i] for i in steps[number].indices])

            pending = None
            number = 0
            while number < len(steps):
                step = steps[number]
                decode(number)
                decode(number + 1)  # decode the next step while this one runs
                failures: list[tuple[int, str]] = []
                images = {}
                for index, loaded in zip(step.indices, loads.pop(number)):
                    if isinstance(loaded, ImageLoadError):
                        report(index, str(loaded), failures)
                    else:
                        images[index] = loaded
                slots = []
                for slot in step.slots:
                    kept = []
                    for place in slot:
                        if place.index in failed or (place.index in redo
                                                     and id(step) not in dedicated):
                            continue
                        image = images[place.index]
                        array = image.half if place.scale else image.full
                        if array.shape[0] <= place.height and array.shape[1] <= place.width:
                            kept.append(place)
                            continue
                        # The pixels are larger than the header said: run it on its own.
                        redo.add(place.index)
                        done.pop(place.index, None)
                        fit = self._fit(*image.full.shape[:2])
                        if fit is None:
                            report(place.index, self.too_large(*image.full.shape[:2]), failures)
                            continue
                        alone = self._bucket_steps([place.index], fit[0], len(self.devices))
                        dedicated.update(id(extra) for extra in alone)
                        steps.extend(alone)
                    slots.append(kept)
                dispatched = self._dispatch(_Step(step.shape, slots), images) \
                    if any(slots) else None
                if pending is not None:  # the previous step, now that this one is queued
                    yield _collect(*pending, done, failed, self._encoders)
                pending = (dispatched, failures)
                number += 1
            if pending is not None:
                yield _collect(*pending, done, failed, self._encoders)
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


def _collect(dispatched, failures, done, failed, encoders) -> BatchResult:
    """Pools a finished step; returns the images now complete (both scales)."""
    complete: list[int] = []
    if dispatched is not None:
        places, outputs, rects = dispatched
        wait_until_ready(list(outputs.values()))
        pooled = {}
        for key, array in outputs.items():  # key: an encoder, or the two of a pair
            array = np.asarray(array)
            for name, part in zip(key, array) if isinstance(key, tuple) else [(key, array)]:
                pooled[name] = [vector for slot in pool_regions(part, rects) for vector in slot]
        for number, place in enumerate(places):
            if place.index in failed:
                continue
            entry = done.setdefault(place.index, {name: [None, None] for name in encoders})
            for name in encoders:
                entry[name][place.scale] = pooled[name][number]
            if all(part is not None for parts in entry.values() for part in parts):
                complete.append(place.index)
    features = {name: np.stack([np.concatenate(done[i][name]) for i in complete])
                if complete else np.zeros((0, 0), np.float32) for name in encoders}
    for index in complete:
        del done[index]
    return BatchResult(complete, features, failures)


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

    compute = inference_dtype(dtype)
    extractor = FeatureExtractor(
        quality_model=(load_model(quality_ckpt, dtype=compute, branch="quality")
                       if quality_ckpt else None),
        content_model=(load_model(content_ckpt, dtype=compute, branch="content")
                       if content_ckpt else None),
        batch_size=batch_size, exif_transpose=exif_transpose, max_pixels=max_pixels,
        batch_pixels=batch_pixels, buckets_per_octave=buckets_per_octave)
    features = extractor.extract(paths, progress=progress, on_error=on_error)
    features.quality_ckpt = os.path.abspath(quality_ckpt) if quality_ckpt else ""
    features.content_ckpt = os.path.abspath(content_ckpt) if content_ckpt else ""
    return features
