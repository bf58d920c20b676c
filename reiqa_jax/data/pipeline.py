"""The grain input pipeline of the trainer.

What enters step ``s`` is a pure function of the config, the image list and
the global device layout, never of how devices are spread over processes:

* The global batch of a step is ``global_batch`` slots. An epoch is
  ``steps_per_epoch = ceil(N / global_batch)`` steps over one permutation of
  the N images (``epoch_permutation(seed, epoch)``); slot g of step s reads
  position ``(s mod steps_per_epoch) * global_batch + g`` of it, modulo N,
  so the last batch of an epoch is filled by wrapping around.
* Process p feeds the slots of its own devices, ``[p * local_batch,
  (p + 1) * local_batch)`` (devices are ordered process-major in the mesh).
* The tile window of a picture is drawn from ``default_rng([seed, epoch,
  position])``.
* A picture that cannot be decoded is skipped: the slot takes the next
  position of the permutation instead (up to ``max_tries`` in a row), the
  skip is counted in the batch's ``skipped`` field and reported on stderr.

The dataset is a grain ``MapDataset`` indexed by (step, slot), so a run that
restarts at step s simply starts the dataset at element ``s * local_batch``:
the step number *is* the iterator's state, whatever the number of worker
processes. Decoding runs in grain worker processes when ``workers > 0``.
"""
from __future__ import annotations

import dataclasses
import functools
import sys

import numpy as np

from reiqa_jax.data import tiles as tiles_lib


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """Everything a worker needs to produce one slot (picklable).

    kind: 'quality' (``tiles.sample_tile``, tile_hw) or 'content'
    (``tiles.content_canvas``, canvas of tile_hw).
    """

    paths: tuple[str, ...]
    seed: int
    global_batch: int
    local_batch: int
    process_offset: int
    kind: str = "quality"
    tile_hw: tuple[int, int] = tiles_lib.TILE_HW
    max_pixels: int | None = None
    max_tries: int = 32

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.paths) // self.global_batch)


@functools.lru_cache(maxsize=4)
def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the N images in epoch ``epoch`` (0-based), int64 (N,)."""
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def slot_position(spec: InputSpec, step: int, slot: int) -> tuple[int, int]:
    """(epoch, position in the epoch's permutation) of a global slot."""
    epoch, within = divmod(step, spec.steps_per_epoch)
    return epoch, within * spec.global_batch + slot


class LoadSlot:
    """grain map function: local element index -> one slot's tile (numpy dict)."""

    def __init__(self, spec: InputSpec):
        self.spec = spec

    def _decode(self, path: str) -> np.ndarray:
        from reiqa_jax.images import DEFAULT_MAX_PIXELS, open_image

        image = open_image(path, max_pixels=self.spec.max_pixels or DEFAULT_MAX_PIXELS)
        return np.asarray(image)

    def __call__(self, element: int) -> dict:
        from reiqa_jax.images import ImageLoadError

        spec = self.spec
        step, local_slot = divmod(int(element), spec.local_batch)
        epoch, position = slot_position(spec, step, spec.process_offset + local_slot)
        order = epoch_permutation(spec.seed, epoch, len(spec.paths))
        skipped = 0
        for attempt in range(spec.max_tries):
            path = spec.paths[order[(position + attempt) % len(spec.paths)]]
            try:
                picture = self._decode(path)
                break
            except (ImageLoadError, OSError) as exc:
                skipped += 1
                print(f"reiqa train: skipped unreadable image {path}: {exc}",
                      file=sys.stderr, flush=True)
        else:
            raise RuntimeError(f"{spec.max_tries} unreadable images in a row (step {step + 1});"
                               f" check the training data")
        rng = np.random.default_rng([spec.seed, epoch, position])
        if spec.kind == "quality":
            out = tiles_lib.sample_tile(rng, picture, spec.tile_hw)
        else:
            out = dict(tiles_lib.content_canvas(picture, spec.tile_hw), transposed=False)
        out["transposed"] = np.bool_(out["transposed"])
        out["skipped"] = np.int32(skipped)
        return out


def make_local_batches(spec: InputSpec, start_step: int, total_steps: int, *,
                       workers: int = 0, threads: int = 8):
    """Iterator of this process's batches for steps [start_step, total_steps).

    Each batch is a dict of numpy arrays with leading dim ``local_batch``:
    pixels uint8 (b, H, W, 3), valid_hw int32 (b, 2), transposed bool (b,),
    skipped int32 (b,). Returns the grain iterator (call ``close()`` when done).
    """
    import grain

    lb = spec.local_batch
    ds = (grain.MapDataset.range(start_step * lb, total_steps * lb)
          .map(LoadSlot(spec))
          .batch(lb, drop_remainder=True))
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, threads),
                                              prefetch_buffer_size=max(2, 2 * threads)))
    if workers > 0:
        from absl import flags

        # grain 0.2.18 reads absl flags in its workers; with jax imported they
        # are not parsed yet and grain raises (fixed upstream).
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(it)
