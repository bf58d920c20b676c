"""Canvas classes: whole pictures of every size in a few array shapes.

The official loader distorts and crops each decoded picture at its own size.
jit compiles one program per input shape, so a picture of (h, w) travels in
a *canvas* of (H, W) >= (h, w), at the top-left, with ``valid_hw = (h, w)``;
every distortion, the crop sampler and the scale-2 resize honour the valid
size (``reiqa_jax.augment.extent``), so what the device computes on the
picture is what the official computes on it alone.

A step's pictures share one canvas (one compiled step per canvas). The
canvases (``assign_canvases``):

1. every picture starts at its size rounded up to a multiple of ``step``
   (portrait and landscape pictures keep their orientation: several
   distortions are not symmetric under transposition);
2. while some class has fewer than ``min_count`` pictures (a class must fill
   at least a whole step without repeating a picture), the smallest one is
   merged with the class that costs the fewest padded pixels (the merged
   canvas is the larger of the two in each side); then, while there are more
   than ``max_classes``, the pair that costs the fewest padded pixels;
3. sides are at most ``max_side``: a larger picture is cut to a random
   ``max_side`` window (``tiles.picture_canvas``), the one deviation left,
   for pictures few training lists hold.

The epoch (``EpochPlan``): each class's pictures in a seeded permutation,
cut into steps of ``batch`` slots (the last one filled by wrapping around
within the class), and the steps of all classes in a seeded order. So
``steps_per_epoch = sum_c ceil(n_c / batch)`` and step s is a pure function
of (seed, s): a run that restarts at step s reads exactly what it would
have read.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np


def round_up(n: int, step: int) -> int:
    return -(-int(n) // step) * step


def initial_canvas(h: int, w: int, step: int, max_side: int) -> tuple[int, int]:
    """The canvas a picture of (h, w) starts from (before merging)."""
    return (min(round_up(h, step), round_up(max_side, step)),
            min(round_up(w, step), round_up(max_side, step)))


def _merge_cost(a, b, na: int, nb: int) -> int:
    m = (max(a[0], b[0]), max(a[1], b[1]))
    area = m[0] * m[1]
    return na * (area - a[0] * a[1]) + nb * (area - b[0] * b[1])


def assign_canvases(sizes, *, step: int = 32, max_side: int = 1024, min_count: int = 1,
                    max_classes: int = 0):
    """Canvas classes for pictures of ``sizes``.

    Args:
      sizes: sequence of (h, w) ints (the decoded pictures' sizes).
      step: canvas sides are multiples of ``step``.
      max_side: the largest canvas side (rounded up to ``step``).
      min_count: the fewest pictures a class may have (unless it is the
        only one).
      max_classes: the most classes (compiled shapes); 0 = no limit.
    Returns:
      (canvases, class_of): canvases a tuple of (H, W), sorted; class_of
      int32 (N,), the class of each picture.
    """
    if step < 1 or max_side < step:
        raise ValueError(f"canvas step {step} and max_side {max_side}: need 1 <= step <= max_side")
    start = [initial_canvas(h, w, step, max_side) for h, w in sizes]
    counts: dict[tuple[int, int], int] = {}
    for c in start:
        counts[c] = counts.get(c, 0) + 1
    target = {c: c for c in counts}  # initial canvas -> where its pictures went
    while len(counts) > 1:
        small = min(counts, key=lambda c: (counts[c], c[0] * c[1], c))
        if counts[small] >= min_count:
            if not max_classes or len(counts) <= max_classes:
                break
            small, partner = min(((a, b) for a in counts for b in counts if a < b),
                                 key=lambda p: (_merge_cost(*p, counts[p[0]], counts[p[1]]), p))
        else:
            partner = min((c for c in counts if c != small),
                          key=lambda c: (_merge_cost(small, c, counts[small], counts[c]), c))
        merged = (max(small[0], partner[0]), max(small[1], partner[1]))
        total = counts.pop(small) + counts.pop(partner)
        counts[merged] = counts.get(merged, 0) + total
        for k, v in target.items():
            if v in (small, partner):
                target[k] = merged
    canvases = tuple(sorted(counts))
    index = {c: i for i, c in enumerate(canvases)}
    class_of = np.array([index[target[c]] for c in start], np.int32)
    return canvases, class_of


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (cache keys)
class EpochPlan:
    """Which pictures fill which step (picklable; pure functions of its fields).

    class_of: class of each picture (N,); n_classes; batch: slots per step
    (global); seed.
    """

    class_of: tuple[int, ...]
    n_classes: int
    batch: int
    seed: int

    @functools.cached_property
    def members(self) -> tuple[np.ndarray, ...]:
        """Picture indices of each class, in index order."""
        c = np.asarray(self.class_of, np.int64)
        return tuple(np.nonzero(c == k)[0] for k in range(self.n_classes))

    @functools.cached_property
    def steps_per_class(self) -> tuple[int, ...]:
        return tuple(-(-len(m) // self.batch) for m in self.members)

    @property
    def steps_per_epoch(self) -> int:
        return sum(self.steps_per_class)

    def epoch_steps(self, epoch: int) -> np.ndarray:
        """(class, step within the class) of every step of ``epoch``, int64
        (steps_per_epoch, 2), in the epoch's order."""
        return _epoch_steps(self, epoch)

    def class_permutation(self, epoch: int, k: int) -> np.ndarray:
        """Class k's pictures in epoch ``epoch``'s order (picture indices)."""
        return _class_permutation(self, epoch, k)

    def step_class(self, step: int) -> int:
        """The class (canvas) of global step ``step`` (0-based)."""
        epoch, within = divmod(int(step), self.steps_per_epoch)
        return int(self.epoch_steps(epoch)[within, 0])

    def slot(self, step: int, slot: int, attempt: int = 0) -> tuple[int, int, tuple]:
        """(class, picture index, draw id) of a global slot. ``attempt`` > 0
        moves to the following pictures of the class (replacing unreadable
        ones); the draw id (epoch, class, position in the class's order)
        seeds what the host draws for the slot."""
        epoch, within = divmod(int(step), self.steps_per_epoch)
        k, j = (int(v) for v in self.epoch_steps(epoch)[within])
        perm = self.class_permutation(epoch, k)
        q = j * self.batch + slot + attempt
        return k, int(perm[q % len(perm)]), (epoch, k, q)


@functools.lru_cache(maxsize=8)
def _epoch_steps(plan: EpochPlan, epoch: int) -> np.ndarray:
    steps = np.array([(k, j) for k, n in enumerate(plan.steps_per_class) for j in range(n)],
                     np.int64).reshape(-1, 2)
    order = np.random.default_rng([plan.seed, epoch, 0x57E9]).permutation(len(steps))
    return steps[order]


@functools.lru_cache(maxsize=64)
def _class_permutation(plan: EpochPlan, epoch: int, k: int) -> np.ndarray:
    members = plan.members[k]
    return members[np.random.default_rng([plan.seed, epoch, k, 0x5EED]).permutation(len(members))]


def coco_like_sizes(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """A synthetic COCO-like list of n (h, w) picture sizes, to measure
    canvas classes without the dataset.

    COCO's pictures are Flickr photos scaled to a long side of 640 (a few
    500 or 612); we draw: orientation landscape 70 %, portrait 25 %, square
    5 %; aspect (long : short) 4:3 50 %, 3:2 25 % (short side 424-428, as
    Flickr's rounding leaves it), 16:9 7 %, otherwise uniform in [1.05, 2];
    long side 640 (95 %), 500 or 612. (Published for COCO: 90 % of the
    pictures have 167,500-355,840 pixels and a height/width ratio in
    [0.6, 1.5]; here 5-95 %: 217,600-384,640 pixels, ratio 0.56-1.51.)
    """
    rng = np.random.default_rng([seed, 0xC0C0])
    out = []
    for _ in range(n):
        long = int(rng.choice([640, 500, 612], p=[0.95, 0.03, 0.02]))
        r = rng.random()
        if r < 0.50:
            short = round(long * 3 / 4)
        elif r < 0.75:
            short = round(long * 2 / 3) + int(rng.integers(-3, 2))
        elif r < 0.82:
            short = round(long * 9 / 16)
        else:
            short = round(long / rng.uniform(1.05, 2.0))
        o = rng.random()
        if o < 0.05:
            out.append((long, long))
        elif o < 0.30:
            out.append((long, short))
        else:
            out.append((short, long))
    return out
