"""Re-IQA feature extraction, computed as the released demo scripts compute it.

For each image: ``Image.open(p).convert('RGB')`` (see :mod:`reiqa_jax.images`
for the cases the demos never met), a half scale by PIL's
``resize((w // 2, h // 2))``, both scales through the encoder in eval mode
(running BatchNorm statistics), feature = concat(full 2048, half 2048).
The quality encoder sees [0, 1] pixels; the content encoder sees
ImageNet-normalised ones. Re-IQA's final feature is content ⊕ quality.

Images keep their own size (no resizing, no cropping), so the work is grouped
by shape: every batch holds images of one shape, short batches are padded to
``batch_size`` by repeating an image, and XLA compiles once per image shape.
Both encoders share one compiled function when their architectures match.
Batches are split across all local devices.

Decoding runs in a thread pool (PIL releases the GIL) one batch ahead of the
device. An image that cannot be used is reported and skipped; the others are
still computed.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import sys
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from reiqa_jax.images import DEFAULT_MAX_PIXELS, ImageLoadError, image_size, load_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODER_INPUTS = {
    # name -> (mean, std) applied to [0, 1] pixels, as in the released demos.
    "quality": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "content": (IMAGENET_MEAN, IMAGENET_STD),
}


@dataclasses.dataclass
class Features:
    """Extraction results, in input order.

    paths: the N images that were used. quality / content: (N, 4096) float32,
    or None when that encoder was not given. failed / errors: inputs that could
    not be used, with a one-line reason each.
    """

    paths: list[str]
    quality: np.ndarray | None
    content: np.ndarray | None
    failed: list[str]
    errors: list[str]

    def reiqa(self) -> np.ndarray:
        """The 8192-d Re-IQA feature: content ⊕ quality (both encoders needed)."""
        if self.quality is None or self.content is None:
            raise ValueError("the Re-IQA feature needs both the content and the quality encoder")
        return np.concatenate([self.content, self.quality], axis=1)

    def save_npz(self, path) -> None:
        arrays = {
            "paths": np.asarray(self.paths, dtype=str),
            "failed": np.asarray(self.failed, dtype=str),
            "errors": np.asarray(self.errors, dtype=str),
        }
        for name in ENCODER_INPUTS:
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        np.savez(path, **arrays)


@functools.partial(jax.jit, static_argnums=0)
def _encode(graphdef, state, images, mean, std):
    """(B, H, W, 3) uint8 -> (B, D) float32 encoder features, eval mode.

    Module-level, so every extractor of the same architecture shares its compilations.
    """
    x = (images.astype(jnp.float32) / 255.0 - mean) / std
    return nnx.merge(graphdef, state).encoder(x).astype(jnp.float32)


class FeatureExtractor:
    """Runs one or two Re-IQA encoders over image files.

    quality_model / content_model: ReIQAModel (or anything with ``.encoder``)
    whose BatchNorm is switched to eval mode here. batch_size is rounded up to
    a multiple of the number of local devices.
    """

    def __init__(self, *, quality_model=None, content_model=None, batch_size: int = 8,
                 exif_transpose: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                 num_workers: int = 4, devices: Sequence[jax.Device] | None = None):
        models = {"quality": quality_model, "content": content_model}
        self._encoders = {}
        self.feature_dims: dict[str, int] = {}
        for name, model in models.items():
            if model is not None:
                model.eval()
                self.feature_dims[name] = 2 * model.encoder.feat_dim
                graphdef, state = nnx.split(model)
                self._encoders[name] = (graphdef, state)
        if not self._encoders:
            raise ValueError("at least one of quality_model / content_model is needed")
        devices = list(devices or jax.local_devices())
        self.batch_size = -(-max(1, batch_size) // len(devices)) * len(devices)
        mesh = Mesh(np.asarray(devices), ("data",))
        self._batch_sharding = NamedSharding(mesh, P("data"))
        replicated = NamedSharding(mesh, P())
        self._encoders = {
            name: (graphdef, jax.device_put(state, replicated))
            for name, (graphdef, state) in self._encoders.items()
        }
        self._constants = {
            name: tuple(jax.device_put(np.asarray(v, np.float32), replicated) for v in stats)
            for name, stats in ENCODER_INPUTS.items()
        }
        self.exif_transpose = exif_transpose
        self.max_pixels = max_pixels
        self.num_workers = max(1, num_workers)

    # -- pieces ---------------------------------------------------------------

    def _load(self, path: str):
        try:
            return load_image(path, exif_transpose=self.exif_transpose, max_pixels=self.max_pixels)
        except ImageLoadError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
            return ImageLoadError(f"{type(exc).__name__}: {' '.join(str(exc).split())}")

    def _shape_groups(self, paths: Sequence[str], report) -> list[list[int]]:
        """Input indices grouped by (H, W) from the headers, groups in first-seen order."""
        groups: dict[tuple[int, int], list[int]] = collections.OrderedDict()
        for index, path in enumerate(paths):
            try:
                shape = image_size(path, exif_transpose=self.exif_transpose)
            except ImageLoadError as exc:
                report(index, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
                report(index, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
                continue
            groups.setdefault(shape, []).append(index)
        return [members for members in groups.values()]

    def _run_batch(self, full: np.ndarray, half: np.ndarray) -> dict[str, jax.Array]:
        """Dispatches one same-shape batch; returns device arrays (B, 2 * D)."""
        count = full.shape[0]
        if count < self.batch_size:  # pad by repetition: one compilation per shape
            repeat = np.arange(self.batch_size) % count
            full, half = full[repeat], half[repeat]
        full = jax.device_put(full, self._batch_sharding)
        half = jax.device_put(half, self._batch_sharding)
        out = {}
        for name, (graphdef, state) in self._encoders.items():
            mean, std = self._constants[name]
            out[name] = jnp.concatenate([
                _encode(graphdef, state, full, mean, std),
                _encode(graphdef, state, half, mean, std),
            ], axis=1)
        return out

    # -- the whole job --------------------------------------------------------

    def extract(self, paths: Sequence[str], *, progress: bool = True,
                on_error: Callable[[str, str], None] | None = None) -> Features:
        """Features for ``paths`` (input order kept); bad images are reported and skipped."""
        paths = [str(p) for p in paths]
        failures: dict[int, str] = {}

        def report(index: int, message: str) -> None:
            failures[index] = message
            if on_error is not None:
                on_error(paths[index], message)

        bar = tqdm(total=len(paths), disable=not progress, unit="img", file=sys.stderr)
        features: dict[str, dict[int, np.ndarray]] = {name: {} for name in self._encoders}
        pending: list[tuple[list[int], dict[str, jax.Array]]] = []

        def collect() -> None:
            for indices, outputs in pending:
                for name, value in outputs.items():
                    rows = np.asarray(value)
                    for row, index in enumerate(indices):
                        features[name][index] = rows[row]
                bar.update(len(indices))
            pending.clear()

        batches = [group[i:i + self.batch_size]
                   for group in self._shape_groups(paths, report)
                   for i in range(0, len(group), self.batch_size)]
        bar.update(len(failures))
        with concurrent.futures.ThreadPoolExecutor(self.num_workers) as pool:
            loads = [pool.map(self._load, [paths[i] for i in batches[0]])] if batches else []
            for number, batch in enumerate(batches):
                if number + 1 < len(batches):  # decode the next batch while this one runs
                    loads.append(pool.map(self._load, [paths[i] for i in batches[number + 1]]))
                by_shape: dict[tuple, list[tuple[int, object]]] = collections.OrderedDict()
                for index, loaded in zip(batch, loads[number]):
                    if isinstance(loaded, ImageLoadError):
                        report(index, str(loaded))
                        bar.update(1)
                    else:  # a header can disagree with the pixels: group by what was decoded
                        by_shape.setdefault(loaded.full.shape, []).append((index, loaded))
                loads[number] = None
                dispatched = []
                for members in by_shape.values():
                    indices = [index for index, _ in members]
                    full = np.stack([image.full for _, image in members])
                    half = np.stack([image.half for _, image in members])
                    dispatched.append((indices, self._run_batch(full, half)))
                collect()  # the previous batch, now that this one is queued
                pending.extend(dispatched)
            collect()
        bar.close()

        done = sorted(features[next(iter(features))])
        result = {name: (np.stack([rows[i] for i in done]).astype(np.float32) if done
                         else np.zeros((0, self.feature_dims[name]), np.float32))
                  for name, rows in features.items()}
        failed = sorted(failures)
        return Features(
            paths=[paths[i] for i in done],
            quality=result.get("quality"),
            content=result.get("content"),
            failed=[paths[i] for i in failed],
            errors=[failures[i] for i in failed],
        )


def extract_features(paths: Sequence[str], *, quality_ckpt=None, content_ckpt=None,
                     batch_size: int = 8, dtype: str = "float32", exif_transpose: bool = False,
                     max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False,
                     on_error: Callable[[str, str], None] | None = None) -> Features:
    """Python API: Re-IQA features of image files from checkpoint directories.

    quality_ckpt / content_ckpt: directories written by ``reiqa convert`` (or
    training); at least one. dtype: compute dtype, "float32" or "bfloat16".
    Returns :class:`Features` with numpy arrays.
    """
    from reiqa_jax.checkpoint import load_model

    compute = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype]
    extractor = FeatureExtractor(
        quality_model=load_model(quality_ckpt, dtype=compute) if quality_ckpt else None,
        content_model=load_model(content_ckpt, dtype=compute) if content_ckpt else None,
        batch_size=batch_size, exif_transpose=exif_transpose, max_pixels=max_pixels)
    return extractor.extract(paths, progress=progress, on_error=on_error)
