"""Features, the regression protocol and scores for the demo's labelled set.

The one module of the demo that calls the features -> scores wing
(``extract_features``, ``run_protocol``, ``fit_final``, ``make_model_dir``,
``score_images``), so those calls can be re-pointed in one place.

The protocol is ``reiqa regress``'s (Ridge / ElasticNet chosen on a
validation part, 70 / 10 / 20 % of the scenes per split), with splits
disjoint by scene: no photo is in the training and the test part of a split.
"""
from __future__ import annotations

import dataclasses

import numpy as np

N_SPLITS = 20


@dataclasses.dataclass
class Measured:
    """One feature set on the labelled set: protocol numbers and test predictions.

    srcc / plcc: median over splits (PLCC after the 4-parameter logistic).
    per_split_srcc: (n_splits,). series_srcc: {kind: mean SRCC within one
    series (a test photo's pristine picture and that kind's 5 levels) over
    all test photos of all splits}. pristine_above: {kind: share of those
    series whose pristine picture is predicted above the kind's level 4} (what
    the demo's example checks on one photo, here on every test photo of every
    split). pristine_above_every_kind: the share of those test photos where that
    holds for every kind at once (the example check's pass rate).
    test_scenes: the test scenes of each split.
    """

    srcc: float
    plcc: float
    per_split_srcc: list[float]
    series_srcc: dict[str, float]
    pristine_above: dict[str, float]
    pristine_above_every_kind: float
    test_scenes: list[list[str]]
    result: object = dataclasses.field(repr=False, default=None)

    def summary(self) -> dict:
        return {"srcc": self.srcc, "plcc": self.plcc, "per_split_srcc": self.per_split_srcc,
                "series_srcc": self.series_srcc,
                "series_srcc_mean": float(np.mean(list(self.series_srcc.values()))),
                "pristine_above_strongest": self.pristine_above,
                "pristine_above_strongest_min": float(min(self.pristine_above.values())),
                "pristine_above_every_kind": self.pristine_above_every_kind}


def encoder_features(paths, checkpoint) -> np.ndarray:
    """The quality encoder's features (``reiqa extract``: full + half scale): (N, D) float32."""
    from reiqa_jax.extract import extract_features

    features = extract_features(list(paths), quality_ckpt=str(checkpoint))
    if features.failed:
        raise RuntimeError(f"could not read {features.failed[0]}: {features.errors[0]}")
    return np.asarray(features.quality)


def splits(labelled, *, n_splits: int = N_SPLITS, seed: int = 0):
    """The protocol's (train, val, test) index arrays on ``labelled``, by scene."""
    from reiqa_jax.scoring.protocol import make_splits

    return make_splits(len(labelled), labelled.scenes, n_splits=n_splits, seed=seed)


def split_series(result, labelled) -> list[tuple]:
    """(split number, photo, kind, indices, test predictions of one series: pristine,
    then levels 0..4) for every test photo and kind of every split of ``result``."""
    out = []
    for number, split in enumerate(result.splits):
        predicted = dict(zip(split.test.tolist(), split.test_prediction))
        for photo in np.unique(labelled.photos[split.test]):
            for kind in np.unique(labelled.kinds[split.test]):
                if kind != "pristine":
                    idx = labelled.series(photo, kind)
                    out.append((number, str(photo), str(kind), idx,
                                np.array([predicted[i] for i in idx])))
    return out


def photo_series(predicted, labelled) -> list[tuple]:
    """The same tuples, as one group, from one prediction per image of ``labelled``
    (e.g. each photo's from a regressor fitted without it): every photo, and the
    kinds in the order of ``labelled``."""
    predicted = np.asarray(predicted)
    kinds = [k for k in dict.fromkeys(labelled.kinds.tolist()) if k != "pristine"]
    return [(0, str(photo), str(kind), idx, predicted[idx])
            for photo in np.unique(labelled.photos) for kind in kinds
            for idx in [labelled.series(photo, kind)]]


def series_srcc(series, labelled) -> dict[str, float]:
    """Per kind, the mean SRCC of the predictions within each series
    (:func:`split_series` or :func:`photo_series`) against the labels."""
    from reiqa_jax import metrics

    values: dict[str, list[float]] = {}
    for _, _, kind, idx, predicted in series:
        values.setdefault(kind, []).append(metrics.srcc(predicted, labelled.scores[idx]))
    return {kind: float(np.nanmean(v)) for kind, v in values.items()}


def pristine_above(series) -> dict[str, float]:
    """Per kind, the share of series whose pristine picture is predicted
    strictly above the kind's strongest level (level 4)."""
    values: dict[str, list[bool]] = {}
    for _, _, kind, _, predicted in series:
        values.setdefault(kind, []).append(bool(predicted[0] > predicted[-1]))
    return {kind: float(np.mean(v)) for kind, v in values.items()}


def pristine_above_every_kind(series) -> float:
    """The share of photos (per group: a split's test photos) whose pristine
    picture is predicted strictly above the strongest level of every kind at
    once: how often the demo's example check would pass on a photo drawn at random."""
    photos: dict[tuple[int, str], bool] = {}
    for number, photo, _, _, predicted in series:
        photos[number, photo] = photos.get((number, photo), True) and bool(
            predicted[0] > predicted[-1])
    return float(np.mean(list(photos.values())))


def measure(features, labelled, *, n_splits: int = N_SPLITS, seed: int = 0) -> Measured:
    """The protocol on ``features`` (N, D) of ``labelled`` (splits by scene)."""
    from reiqa_jax.scoring.protocol import run_protocol

    result = run_protocol(np.asarray(features, np.float64), labelled.scores, labelled.scenes,
                          n_splits=n_splits, seed=seed)
    series = split_series(result, labelled)
    return Measured(
        srcc=float(result.srcc_median), plcc=float(result.plcc_median),
        per_split_srcc=[float(s.srcc) for s in result.splits],
        series_srcc=series_srcc(series, labelled),
        pristine_above=pristine_above(series),
        pristine_above_every_kind=pristine_above_every_kind(series),
        test_scenes=[sorted(set(labelled.scenes[s.test].tolist())) for s in result.splits],
        result=result)


def one_kind_alone(features, labelled, *, n_splits: int = N_SPLITS, seed: int = 0
                   ) -> dict[str, float]:
    """Per kind, the protocol's median SRCC on that kind's series alone (its 5
    levels and the pristine pictures, same splits by scene): whether the features
    carry the kind's severity at all, before one regressor has to serve every kind."""
    from reiqa_jax.scoring.protocol import run_protocol

    x = np.asarray(features, np.float64)
    out = {}
    for kind in np.unique(labelled.kinds):
        if kind == "pristine":
            continue
        keep = labelled.kind_rows(kind)
        result = run_protocol(x[keep], labelled.scores[keep], labelled.scenes[keep],
                              n_splits=n_splits, seed=seed)
        out[str(kind)] = float(result.srcc_median)
    return out


def quality_model(features, labelled, measured: Measured, checkpoint, model_dir) -> str:
    """The regressor the protocol chose, refitted on every image, as a ``reiqa score`` model folder."""
    from reiqa_jax.scoring.model_dir import make_model_dir
    from reiqa_jax.scoring.protocol import fit_final

    regressor = fit_final(np.asarray(features, np.float64), labelled.scores, measured.result,
                          feature_names=("quality",))
    return str(make_model_dir(model_dir, regressor, quality_ckpt=str(checkpoint),
                              meta={"made_by": "reiqa demo"}, overwrite=True))


def score(paths, model_dir, csv_path=None) -> list[float]:
    """``reiqa score``'s scores of ``paths`` with ``model_dir`` (and its CSV, when asked)."""
    from reiqa_jax.scoring.model_dir import score_images, write_scores_csv

    rows = score_images(list(paths), str(model_dir))
    if csv_path is not None:
        write_scores_csv(rows, str(csv_path))
    failed = [r for r in rows if r.error]
    if failed:
        raise RuntimeError(f"could not score {failed[0].path}: {failed[0].error}")
    return [float(r.score) for r in rows]
