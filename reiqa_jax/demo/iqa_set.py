"""The demo's labelled IQA set: held-out photos, pristine and distorted.

Each photo (``photos.cover_crop``, 192 x 256) is written pristine (score 5)
and distorted by every kind of ``kinds.KINDS`` at levels 0..4 (score
``4 - level``), with the augment package's ops (the training distortions).
Labels are certain within one series (a photo's pristine picture and one
kind's 5 levels, drawn with one random key, so that the random ops nest: the
noise of level 3 is the noise of level 2 scaled up, its coloured blocks
include level 2's); across kinds the score is a convention (level 4 of JPEG
and level 4 of darkening are both scored 0).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

PRISTINE_SCORE = 5.0


@dataclasses.dataclass
class LabelledSet:
    """N images: paths, scores (float64), photo / scene / kind names, level (-1 = pristine)."""

    paths: list[str]
    scores: np.ndarray
    photos: np.ndarray
    scenes: np.ndarray
    kinds: np.ndarray
    levels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, photos) -> "LabelledSet":
        keep = np.isin(self.photos, list(photos))
        return LabelledSet([p for p, k in zip(self.paths, keep) if k], self.scores[keep],
                           self.photos[keep], self.scenes[keep], self.kinds[keep],
                           self.levels[keep])

    def kind_rows(self, kind: str) -> np.ndarray:
        """Indices of every series of ``kind``: its levels and the pristine pictures."""
        return np.flatnonzero((self.kinds == kind) | (self.kinds == "pristine"))

    def series(self, photo: str, kind: str) -> np.ndarray:
        """Indices of one series: the photo's pristine picture, then levels 0..4 of ``kind``."""
        pristine = np.flatnonzero((self.photos == photo) & (self.kinds == "pristine"))
        levels = np.flatnonzero((self.photos == photo) & (self.kinds == kind))
        return np.concatenate([pristine, levels[np.argsort(self.levels[levels])]])


def score_of(level: int) -> float:
    """The label: 5 for the pristine picture (level -1), 4 - level otherwise."""
    return PRISTINE_SCORE if level < 0 else 4.0 - level


def make_labelled_set(folder, photos, kinds, *, seed: int = 0, hw=None) -> LabelledSet:
    """Writes the set's PNG files into ``folder`` (kept when a previous call made
    the same set) and returns it. Photos are named as in :mod:`.photos`."""
    import jax

    from reiqa_jax.augment import distort
    from reiqa_jax.demo.photos import IMAGE_HW, cover_crop, file_name, load_photo, scene_of
    from reiqa_jax.normalize import to_unit_float

    hw = tuple(hw or IMAGE_HW)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [file_name(p) for p in photos]
    if len(set(names)) != len(names):
        raise ValueError(f"photos need distinct names, got {names}")
    rows = [(p, "pristine", -1) for p in photos] + [
        (p, k, level) for p in photos for k in kinds for level in range(5)]
    manifest = {"photos": list(photos), "kinds": list(kinds), "seed": seed, "hw": list(hw),
                "keys": "one per (photo, kind) series",
                "files": [f"{file_name(p)}_{k}_{lv}.png" if lv >= 0 else
                          f"{file_name(p)}_pristine.png" for p, k, lv in rows]}
    manifest_path = folder / "labelled_set.json"
    done = (manifest_path.exists() and json.loads(manifest_path.read_text()) == manifest
            and all((folder / f).exists() for f in manifest["files"]))
    if not done:
        from PIL import Image

        apply = {k: jax.jit(lambda key, x, level, k=k: distort(key, x, k, level))
                 for k in kinds}
        for p_index, photo in enumerate(photos):
            picture = cover_crop(load_photo(photo), hw)
            Image.fromarray(picture).save(folder / f"{file_name(photo)}_pristine.png")
            x = to_unit_float(picture)
            for k_index, kind in enumerate(kinds):
                # One key per series: the levels draw the same noise, block
                # positions, ..., so a higher level only adds damage.
                key = jax.random.key(np.random.SeedSequence(
                    [seed, p_index, k_index]).generate_state(1)[0])
                for level in range(5):
                    out = np.asarray(apply[kind](key, x, np.int32(level)))
                    image = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
                    Image.fromarray(image).save(folder / f"{file_name(photo)}_{kind}_{level}.png")
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return LabelledSet(
        paths=[str(folder / f) for f in manifest["files"]],
        scores=np.array([score_of(lv) for _, _, lv in rows]),
        photos=np.array([p for p, _, _ in rows]),
        scenes=np.array([scene_of(p) for p, _, _ in rows]),
        kinds=np.array([k for _, k, _ in rows]),
        levels=np.array([lv for _, _, lv in rows]))
