"""Helpers shared by the demo's tests."""
import numpy as np

from reiqa_jax.demo.iqa_set import LabelledSet, score_of
from reiqa_jax.demo.photos import scene_of


def labels_only(names, kinds=("jpeg", "darken")) -> LabelledSet:
    """A labelled set's labels without its files: pristine + ``kinds`` x 5 levels per photo."""
    rows = [(p, "pristine", -1) for p in names] + [
        (p, k, lv) for p in names for k in kinds for lv in range(5)]
    return LabelledSet(paths=[f"{p}_{k}_{lv}" for p, k, lv in rows],
                       scores=np.array([score_of(lv) for _, _, lv in rows]),
                       photos=np.array([p for p, _, _ in rows]),
                       scenes=np.array([scene_of(p) for p, _, _ in rows]),
                       kinds=np.array([k for _, k, _ in rows]),
                       levels=np.array([lv for _, _, lv in rows]))
