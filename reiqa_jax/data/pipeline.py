"""The grain input pipeline of the trainer.

What enters step ``s`` is a pure function of the config, the image list (and
the pictures' sizes) and the global device layout, never of how devices are
spread over processes:

* Quality branch: every picture goes whole into a canvas of its class
  (``data.canvases``: sizes read from the files' headers once, at the start);
  a step's pictures share one canvas. Content branch: one canvas
  (``tile_hw``) that each picture is shrunk to fit (``tiles.content_canvas``).
* The global batch of a step is ``global_batch`` slots, filled as
  ``canvases.EpochPlan`` says: per epoch, each class's pictures in a seeded
  permutation cut into steps (the last one wrapping around within the
  class), the steps of all classes in a seeded order.
* Process p feeds the slots of its own devices, ``[p * local_batch,
  (p + 1) * local_batch)`` (devices are ordered process-major in the mesh).
* Whatever the host draws for a slot (the window of a picture larger than
  the largest canvas) comes from ``default_rng([seed, epoch, class,
  position])``.
* A picture that cannot be decoded (or is smaller than ``MIN_SIDE``, or no
  longer has the size read at the start) is skipped: the slot takes the next
  picture of the class instead (up to ``max_tries`` in a row), the skip is
  counted in the batch's ``skipped`` field and reported on stderr.

The dataset is a grain ``MapDataset`` indexed by (step, slot), so a run that
restarts at step s simply starts the dataset at element ``s * local_batch``:
the step number *is* the iterator's state, whatever the number of worker
processes. Decoding runs in grain worker processes when ``workers > 0``.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import sys

import numpy as np

from reiqa_jax.augment.resize_valid import MIN_SIDE
from reiqa_jax.data import canvases as canvases_lib
from reiqa_jax.data import tiles as tiles_lib


@dataclasses.dataclass(frozen=True, eq=False)
class InputSpec:
    """Everything a worker needs to produce one slot (picklable).

    kind: 'quality' (whole pictures in the canvases of their classes) or
    'content' (``tiles.content_canvas`` of ``tile_hw``).
    canvases / class_of / exact (quality): the class canvases (H, W), the
    class of each path, and per class whether every picture fills its
    canvas (then the batch carries no ``valid_hw`` and the views use the
    static sizes). Empty for 'content' (one class).
    """

    paths: tuple[str, ...]
    seed: int
    global_batch: int
    local_batch: int
    process_offset: int
    kind: str = "quality"
    tile_hw: tuple[int, int] = tiles_lib.TILE_HW
    canvases: tuple[tuple[int, int], ...] = ()
    class_of: tuple[int, ...] = ()
    exact: tuple[bool, ...] = ()
    max_pixels: int | None = None
    max_tries: int = 32

    @functools.cached_property
    def plan(self) -> canvases_lib.EpochPlan:
        if self.kind == "quality":
            if len(self.class_of) != len(self.paths) or not self.canvases:
                raise ValueError("a quality InputSpec needs canvases and class_of "
                                 "(see quality_classes)")
            return canvases_lib.EpochPlan(tuple(self.class_of), len(self.canvases),
                                          self.global_batch, self.seed)
        return canvases_lib.EpochPlan((0,) * len(self.paths), 1, self.global_batch, self.seed)

    @property
    def steps_per_epoch(self) -> int:
        return self.plan.steps_per_epoch

    def canvas(self, k: int) -> tuple[int, int]:
        return tuple(self.canvases[k]) if self.kind == "quality" else tuple(self.tile_hw)


# --- the pictures' sizes and classes, once per run ------------------------------

def read_sizes(paths, threads: int = 8) -> list[tuple[int, int] | None]:
    """(h, w) of each file from its header (None: unreadable), threaded."""
    from reiqa_jax.images import ImageLoadError, image_size

    def one(path):
        try:
            return image_size(path)
        except (ImageLoadError, OSError):
            return None

    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(one, paths))


@dataclasses.dataclass(frozen=True)
class Classes:
    """``quality_classes`` output: the InputSpec fields and what was set aside."""

    canvases: tuple[tuple[int, int], ...]
    class_of: tuple[int, ...]
    exact: tuple[bool, ...]
    unusable: int       # unreadable headers or pictures below MIN_SIDE
    windowed: int       # pictures larger than the largest canvas (cut)
    sizes: tuple = ()   # (h, w) of each picture from its header, None if unreadable

    def counts(self) -> list[int]:
        return np.bincount(np.asarray(self.class_of), minlength=len(self.canvases)).tolist()


def is_usable(size) -> bool:
    """Whether a picture of header size ``size`` ((h, w), None when unreadable)
    can be trained on: its header was read and no side is under ``MIN_SIDE``."""
    return size is not None and min(size) >= MIN_SIDE


def quality_classes(sizes, *, step: int, max_side: int, min_count: int,
                    max_classes: int = 0) -> Classes:
    """Canvas classes of the quality branch from the pictures' sizes.

    Pictures with unreadable headers or a side below ``MIN_SIDE`` join the
    largest class: they are skipped when drawn, as unreadable files are.
    """
    usable = [is_usable(s) for s in sizes]
    good = [s for s, u in zip(sizes, usable) if u]
    if not good:  # nothing usable: one class; every draw is skipped and reported
        canvases, class_good = ((round_side(MIN_SIDE, step),) * 2,), np.zeros(0, np.int32)
    else:
        canvases, class_good = canvases_lib.assign_canvases(
            good, step=step, max_side=max_side, min_count=min_count, max_classes=max_classes)
    counts = np.bincount(class_good, minlength=len(canvases))
    largest = int(np.argmax(counts)) if len(counts) else 0
    it = iter(class_good.tolist())
    class_of = tuple(next(it) if u else largest for u in usable)
    good_hw = np.asarray(good, np.int64).reshape(-1, 2)
    fills = np.all(good_hw == np.asarray(canvases, np.int64)[class_good], axis=1)
    exact = tuple(bool(counts[c] > 0 and fills[class_good == c].all())
                  for c in range(len(canvases)))
    windowed = int(np.sum(good_hw.max(axis=1) > max_side)) if len(good) else 0
    return Classes(canvases=tuple(tuple(int(v) for v in c) for c in canvases),
                   class_of=class_of, exact=exact, unusable=len(sizes) - len(good),
                   windowed=windowed, sizes=tuple(sizes))


def round_side(n: int, step: int) -> int:
    return canvases_lib.round_up(n, step)


def make_input_spec(config, paths, *, global_batch: int, local_batch: int,
                    process_offset: int, threads: int = 16) -> tuple[InputSpec, Classes | None]:
    """The run's InputSpec from its config (``branch``, ``seed``, ``canvas``,
    ``tile_hw``, ``input.max_pixels``); quality: reads every picture's size
    from its header (threaded) and assigns canvas classes. Returns the spec
    and the classes (None for 'content')."""
    common = dict(paths=tuple(paths), seed=config.seed, global_batch=global_batch,
                  local_batch=local_batch, process_offset=process_offset, kind=config.branch,
                  tile_hw=tuple(config.tile_hw), max_pixels=config.input.max_pixels or None)
    if config.branch != "quality":
        return InputSpec(**common), None
    canvas = config.canvas
    classes = quality_classes(read_sizes(paths, threads), step=canvas.step,
                              max_side=canvas.max_side,
                              min_count=canvas.min_class or global_batch,
                              max_classes=canvas.max_classes)
    return InputSpec(canvases=classes.canvases, class_of=classes.class_of,
                     exact=classes.exact, **common), classes


# --- one slot -------------------------------------------------------------------

class _Unusable(ValueError):
    pass


class LoadSlot:
    """grain map function: local element index -> one slot's canvas (numpy dict)."""

    def __init__(self, spec: InputSpec):
        self.spec = spec
        # Paths already named on stderr by this input process: a file that stays
        # unreadable is named once, its later draws only counted (skipped_images).
        self._named: set[str] = set()

    def _decode(self, path: str) -> np.ndarray:
        from reiqa_jax.images import DEFAULT_MAX_PIXELS, open_image

        image = open_image(path, max_pixels=self.spec.max_pixels or DEFAULT_MAX_PIXELS)
        return np.asarray(image)

    def _check(self, picture: np.ndarray, k: int) -> None:
        if self.spec.kind != "quality":
            return
        h, w = picture.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise _Unusable(f"{w}x{h} is smaller than {MIN_SIDE} px on a side")
        canvas = self.spec.canvas(k)
        if self.spec.exact[k] and (h, w) != canvas:
            raise _Unusable(f"it is {w}x{h} now, not {canvas[1]}x{canvas[0]} as at the start")

    def __call__(self, element: int) -> dict:
        from reiqa_jax.images import ImageLoadError

        spec = self.spec
        step, local_slot = divmod(int(element), spec.local_batch)
        skipped = 0
        for attempt in range(spec.max_tries):
            k, index, draw = spec.plan.slot(step, spec.process_offset + local_slot, attempt)
            path = spec.paths[index]
            try:
                picture = self._decode(path)
                self._check(picture, k)
                break
            except (ImageLoadError, OSError, _Unusable) as exc:
                skipped += 1
                if path not in self._named:
                    self._named.add(path)
                    # one write, so lines of the input threads never run together
                    sys.stderr.write(f"reiqa train: skipped unreadable image {path}: {exc} "
                                     f"(its later draws are skipped without a line; "
                                     f"metrics.jsonl counts them as skipped_images)\n")
                    sys.stderr.flush()
        else:
            raise RuntimeError(f"{spec.max_tries} unreadable images in a row (step {step + 1});"
                               f" check the training data")
        if spec.kind == "quality":
            rng = np.random.default_rng([spec.seed, *draw])
            out = tiles_lib.picture_canvas(rng, picture, spec.canvas(k))
            if spec.exact[k]:
                del out["valid_hw"]  # every picture of the class fills the canvas
        else:
            out = tiles_lib.content_canvas(picture, spec.tile_hw)
        out["skipped"] = np.int32(skipped)
        return out


def make_local_batches(spec: InputSpec, start_step: int, total_steps: int, *,
                       workers: int = 0, threads: int = 8):
    """Iterator of this process's batches for steps [start_step, total_steps).

    Each batch is a dict of numpy arrays with leading dim ``local_batch``:
    pixels uint8 (b, H, W, 3) (H, W: the step's canvas), valid_hw int32
    (b, 2) (absent when every picture of the class fills the canvas),
    skipped int32 (b,). Returns the grain iterator (call ``close()`` when done).
    """
    import grain

    lb = spec.local_batch
    spec.plan.members  # noqa: B018 - computed once here, not in every worker
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
