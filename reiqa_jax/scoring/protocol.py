"""The Re-IQA evaluation protocol: a regularised linear regressor on frozen features.

Re-IQA scores an image with a linear regressor on its 8192-d feature
(content 4096 ⊕ quality 4096). The paper's protocol, which this module runs:

1. ``n_splits`` (10) random train / validation / test splits of 70 / 10 / 20 %
   of the images. When ``groups`` are given (the reference content of a
   synthetic dataset: all distorted versions of one photo), whole groups go
   to one part, so no content is seen in training and in test. Split ``i``
   draws from ``numpy.random.default_rng([seed, i])``: fixed seeds, the same
   splits on every machine.
2. Features are standardised with the training part's mean and standard
   deviation. Ridge and ElasticNet (scikit-learn) are fitted on the training
   part for every value of a hyper-parameter grid; the model and value with
   the best SRCC on the validation part wins.
3. The winner predicts the test part: SRCC, PLCC after the 4-parameter
   logistic fit (:mod:`reiqa_jax.metrics`) and raw PLCC.
4. Reported: the median over the splits of each number, and every split
   (:mod:`reiqa_jax.scoring.report` writes them).

Hyper-parameters are relative, so one grid fits every dataset size and score
scale: Ridge's penalty is ``alpha = alpha_rel * n_train`` on
``||y - Xw||^2 + alpha ||w||^2`` (standardised X has ``X^T X`` diagonal
``n_train``); ElasticNet's is ``alpha = alpha_rel * std(y_train)`` in
scikit-learn's per-sample objective. The Ridge path is solved for all values
at once from one eigendecomposition (the same solution as
``sklearn.linear_model.Ridge``, checked in the tests); ElasticNet runs
``sklearn.linear_model.enet_path`` with warm starts.

:func:`fit_final` refits the most often chosen model on all images, as a
:class:`reiqa_jax.scoring.regressor.Regressor`.

Python API::

    from reiqa_jax.scoring.protocol import run_protocol, fit_final
    result = run_protocol(features, scores, groups=None, n_splits=10, seed=0)
    result.srcc_median, result.plcc_median, result.splits[0].srcc
    regressor = fit_final(features, scores, result)
"""

from __future__ import annotations

import collections
import dataclasses
import math
import sys
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from reiqa_jax import metrics
from reiqa_jax.errors import ReiqaError
from reiqa_jax.scoring.features import FEATURE_ORDER
from reiqa_jax.scoring.regressor import Regressor

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 9))
# Smaller ElasticNet penalties cost minutes per fit on 8192-d features and lose
# to Ridge on validation anyway (measured on 1400 x 8192 synthetic features).
ELASTICNET_ALPHAS = (0.01, 0.1, 1.0)
ELASTICNET_L1_RATIOS = (0.1, 0.5, 0.9)
MODELS = ("ridge", "elasticnet")
FRACTIONS = (0.7, 0.1, 0.2)


class ProtocolError(ReiqaError, ValueError):
    """Inputs the protocol cannot run on; the message is one line."""


class Stopped(Exception):
    """A run stopped at a safe point because it was asked to (a signal); what it
    had finished is saved where the run keeps such things."""


# ----------------------------------------------------------------------------
# splits

def make_splits(n_images: int, groups: Sequence | None = None, *, n_splits: int = 10,
                seed: int = 0, fractions: tuple[float, float, float] = FRACTIONS
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``n_splits`` (train, val, test) index arrays, disjoint by group.

    Without groups every image is its own group. The groups are shuffled with
    ``default_rng([seed, i])`` and cut at round(70 %) / round(10 %) of the
    group count (at least one group in each part). Indices are sorted.
    """
    if groups is None:
        labels = np.arange(n_images)
    else:
        labels = np.asarray(groups)
        if labels.shape != (n_images,):
            raise ProtocolError(f"groups has {labels.size} entries for {n_images} images")
    unique, inverse = np.unique(labels, return_inverse=True)
    n_groups = len(unique)
    if n_groups < 3:
        raise ProtocolError(f"need at least 3 {'groups' if groups is not None else 'images'} "
                            f"for train/val/test splits, got {n_groups}")
    n_train = min(max(1, round(fractions[0] * n_groups)), n_groups - 2)
    n_val = min(max(1, round(fractions[1] * n_groups)), n_groups - n_train - 1)
    splits = []
    for i in range(n_splits):
        order = np.random.default_rng([seed, i]).permutation(n_groups)
        part = np.empty(n_groups, dtype=np.int8)
        part[order[:n_train]] = 0
        part[order[n_train:n_train + n_val]] = 1
        part[order[n_train + n_val:]] = 2
        of_image = part[inverse]
        splits.append(tuple(np.flatnonzero(of_image == k) for k in range(3)))
    return splits


# ----------------------------------------------------------------------------
# fitting

def standardize_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (1 where a feature is constant)."""
    mean = x.mean(axis=0, dtype=np.float64)
    scale = x.std(axis=0, dtype=np.float64)
    scale[scale < 1e-12] = 1.0
    return mean, scale


class RidgePath:
    """Ridge solutions for many penalties from one eigendecomposition.

    x: (n, d) standardised features, y: (n,) centred scores. ``coef(alpha)``
    minimises ``||y - x w||^2 + alpha ||w||^2``, as sklearn's Ridge does with
    ``fit_intercept=False``. Uses the (d, d) Gram matrix when n >= d, else the
    (n, n) kernel matrix.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, gram: np.ndarray | None = None):
        self.x = x
        n, d = x.shape
        self.primal = n >= d
        if gram is None:
            gram = x.T @ x if self.primal else x @ x.T
        self.eigvals, self.eigvecs = np.linalg.eigh(gram)
        self.eigvals = np.clip(self.eigvals, 0.0, None)
        self.proj = self.eigvecs.T @ (x.T @ y if self.primal else y)

    def coef(self, alpha: float) -> np.ndarray:
        weights = self.proj / (self.eigvals + alpha)
        if self.primal:
            return self.eigvecs @ weights
        return self.x.T @ (self.eigvecs @ weights)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One point of the hyper-parameter grid: model "ridge" or "elasticnet",
    relative penalty ``alpha`` (see the module doc), ElasticNet's ``l1_ratio``."""

    model: str
    alpha: float
    l1_ratio: float | None = None

    def label(self) -> str:
        extra = f", l1_ratio={self.l1_ratio:g}" if self.l1_ratio is not None else ""
        return f"{self.model}(alpha={self.alpha:g}{extra})"

    def to_json(self) -> dict:
        return {"model": self.model, "alpha": self.alpha, "l1_ratio": self.l1_ratio}


def candidate_grid(models: Sequence[str] = MODELS, *, ridge_alphas=RIDGE_ALPHAS,
                   elasticnet_alphas=ELASTICNET_ALPHAS,
                   l1_ratios=ELASTICNET_L1_RATIOS) -> list[Candidate]:
    """The grid searched on each split, Ridge first, small penalties first."""
    unknown = set(models) - set(MODELS)
    if unknown or not models:
        raise ProtocolError(f"models must be among {', '.join(MODELS)}, got {', '.join(models)}")
    grid = []
    if "ridge" in models:
        grid += [Candidate("ridge", float(a)) for a in ridge_alphas]
    if "elasticnet" in models:
        grid += [Candidate("elasticnet", float(a), float(r))
                 for r in l1_ratios for a in elasticnet_alphas]
    return grid


def _elasticnet_coefs(x: np.ndarray, y: np.ndarray, candidates: Sequence[Candidate],
                      max_iter: int, gram: np.ndarray | None) -> dict[Candidate, np.ndarray]:
    """ElasticNet coefficients of ``candidates`` (one warm-started path per l1_ratio)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import enet_path

    y_std = float(np.std(y)) or 1.0
    x = np.asfortranarray(x)  # coordinate descent walks columns
    xy = x.T @ y if gram is not None else None
    out = {}
    by_ratio = collections.defaultdict(list)
    for c in candidates:
        by_ratio[c.l1_ratio].append(c)
    for ratio, group in by_ratio.items():
        group = sorted(group, key=lambda c: -c.alpha)  # enet_path goes from strong to weak
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, coefs, _ = enet_path(
                x, y, l1_ratio=ratio, alphas=[c.alpha * y_std for c in group],
                precompute=gram if gram is not None else False, Xy=xy, max_iter=max_iter)
        for k, c in enumerate(group):
            out[c] = coefs[:, k]
    return out


def fit_candidates(x: np.ndarray, y: np.ndarray, candidates: Sequence[Candidate], *,
                   max_iter: int = 2000) -> dict[Candidate, np.ndarray]:
    """Coefficients for every candidate on standardised ``x`` and centred ``y`` (float64)."""
    out = {}
    # One (d, d) Gram matrix serves both models when there are more images than features.
    gram = x.T @ x if x.shape[0] >= x.shape[1] else None
    ridge = [c for c in candidates if c.model == "ridge"]
    if ridge:
        path = RidgePath(x, y, gram)
        for c in ridge:
            out[c] = path.coef(c.alpha * x.shape[0])
    enet = [c for c in candidates if c.model == "elasticnet"]
    if enet:
        out.update(_elasticnet_coefs(x, y, enet, max_iter, gram))
    return out


def fit_regressor(features, scores, candidate: Candidate, *, higher_is_better: bool = True,
                  feature_names: Sequence[str] = FEATURE_ORDER, max_iter: int = 2000) -> Regressor:
    """One candidate fitted on all of ``features`` (N, D) / ``scores`` (N,) with scikit-learn.

    Ridge is ``sklearn.linear_model.Ridge(alpha=candidate.alpha * N)``, ElasticNet
    ``ElasticNet(alpha=candidate.alpha * std(scores), l1_ratio=...)``, both on
    standardised features with an intercept.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNet, Ridge

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(scores, dtype=np.float64)
    mean, scale = standardize_stats(x)
    xs = (x - mean) / scale
    if candidate.model == "ridge":
        estimator = Ridge(alpha=candidate.alpha * len(y))
    else:
        estimator = ElasticNet(alpha=candidate.alpha * (float(np.std(y)) or 1.0),
                               l1_ratio=candidate.l1_ratio, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(xs, y)
    return Regressor(coef=np.asarray(estimator.coef_, np.float64).reshape(-1),
                     intercept=float(estimator.intercept_), mean=mean, scale=scale,
                     model=candidate.model, alpha=candidate.alpha, l1_ratio=candidate.l1_ratio,
                     higher_is_better=higher_is_better,
                     score_range=(float(y.min()), float(y.max())),
                     features=tuple(feature_names), n_train=len(y))


# ----------------------------------------------------------------------------
# the protocol

@dataclasses.dataclass
class SplitResult:
    """One split: its indices, the winning candidate and the test numbers."""

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    chosen: Candidate
    val_srcc: float
    srcc: float
    plcc: float
    plcc_raw: float
    test_prediction: np.ndarray

    def to_json(self) -> dict:
        return {"split": self.index, "n_train": int(self.train.size), "n_val": int(self.val.size),
                "n_test": int(self.test.size), **self.chosen.to_json(),
                "val_srcc": _num(self.val_srcc), "srcc": _num(self.srcc),
                "plcc": _num(self.plcc), "plcc_raw": _num(self.plcc_raw)}


@dataclasses.dataclass
class ProtocolResult:
    """Everything :func:`run_protocol` measured.

    ``srcc_median`` / ``plcc_median`` (PLCC after the logistic fit) /
    ``plcc_raw_median``: medians over the splits. ``median_split``: the split
    whose test SRCC is the median (the lower middle one for an even count).
    ``chosen``: the candidate chosen on most splits (ties: the better median
    validation SRCC), the one :func:`fit_final` refits on all images.
    """

    splits: list[SplitResult]
    scores: np.ndarray
    groups: np.ndarray | None
    n_features: int
    seed: int
    higher_is_better: bool
    grid: list[Candidate]
    names: list[str] | None = None

    @property
    def n_images(self) -> int:
        return int(self.scores.size)

    @property
    def n_splits(self) -> int:
        return len(self.splits)

    @property
    def n_undefined(self) -> int:
        """Splits whose test SRCC is undefined (constant test scores or predictions)."""
        return sum(math.isnan(s.srcc) for s in self.splits)

    def _median(self, name: str) -> float:
        """The median over the splits where ``name`` is defined (NaN when none)."""
        values = np.array([getattr(s, name) for s in self.splits], dtype=np.float64)
        values = values[~np.isnan(values)]
        return float(np.median(values)) if values.size else float("nan")

    @property
    def srcc_median(self) -> float:
        return self._median("srcc")

    @property
    def plcc_median(self) -> float:
        return self._median("plcc")

    @property
    def plcc_raw_median(self) -> float:
        return self._median("plcc_raw")

    @property
    def median_split(self) -> int:
        defined = [i for i, s in enumerate(self.splits) if not math.isnan(s.srcc)]
        order = sorted(defined or range(len(self.splits)),
                       key=lambda i: (_sort_key(self.splits[i].srcc), i))
        return order[(len(order) - 1) // 2]

    @property
    def n_test(self) -> tuple[int, int]:
        """(fewest, most) test images of a split."""
        sizes = [int(s.test.size) for s in self.splits]
        return min(sizes), max(sizes)

    @property
    def chosen(self) -> Candidate:
        counts = collections.Counter(s.chosen for s in self.splits)
        val = collections.defaultdict(list)
        for s in self.splits:
            val[s.chosen].append(_sort_key(s.val_srcc))
        return max(counts, key=lambda c: (counts[c], float(np.median(val[c]))))

    def to_json(self) -> dict:
        n_groups = None if self.groups is None else int(np.unique(self.groups).size)
        return {
            "srcc_median": _num(self.srcc_median), "plcc_median": _num(self.plcc_median),
            "plcc_raw_median": _num(self.plcc_raw_median),
            "srcc_mean": _num(np.mean([s.srcc for s in self.splits])),
            "srcc_std": _num(np.std([s.srcc for s in self.splits])),
            "plcc_mean": _num(np.mean([s.plcc for s in self.splits])),
            "n_images": self.n_images, "n_groups": n_groups, "n_features": self.n_features,
            "n_splits": self.n_splits, "seed": self.seed, "fractions": list(FRACTIONS),
            "score_direction": "higher is better" if self.higher_is_better else "lower is better",
            "median_split": self.median_split, "chosen": self.chosen.to_json(),
            "grid": [c.to_json() for c in self.grid],
            "per_split": [s.to_json() for s in self.splits],
            "srcc": [_num(s.srcc) for s in self.splits],
            "plcc": [_num(s.plcc) for s in self.splits],
            "plcc_raw": [_num(s.plcc_raw) for s in self.splits],
            "n_test_min": self.n_test[0], "n_test_max": self.n_test[1],
            "n_splits_undefined": self.n_undefined,
        }


def _num(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _sort_key(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def _safe(metric: Callable, pred: np.ndarray, y: np.ndarray) -> float:
    try:
        return metric(pred, y)
    except ValueError:
        return float("nan")


def run_protocol(features, scores, groups=None, *, n_splits: int = 10, seed: int = 0,
                 models: Sequence[str] = MODELS, grid: Sequence[Candidate] | None = None,
                 higher_is_better: bool = True, names: Sequence[str] | None = None,
                 progress: bool = False, max_iter: int = 2000,
                 should_stop: Callable[[], bool] | None = None) -> ProtocolResult:
    """Runs the protocol (module doc) on ``features`` (N, D) and ``scores`` (N,).

    groups: (N,) content labels; splits are disjoint by group. models: which of
    "ridge", "elasticnet" to search (ignored when ``grid`` is given).
    higher_is_better: the scores' direction, recorded for the report and the
    regressor (metrics are computed in the scores' own direction, as published).
    names: optional (N,) image names, kept for the report. progress: a bar on stderr.
    should_stop: asked after each split; when it says True, :class:`Stopped` is raised.
    Raises ProtocolError (one line) for inputs it cannot measure anything on:
    fewer than 10 images, non-finite values, scores that are all equal, or
    predictions without a defined SRCC on every split.
    """
    x = np.asarray(features)
    y = np.asarray(scores, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ProtocolError(f"features {x.shape} do not match {y.size} scores")
    if not np.all(np.isfinite(y)):
        raise ProtocolError("scores must be finite numbers")
    if not np.all(np.isfinite(x)):
        raise ProtocolError("features contain NaN or infinite values")
    if y.size < 10:
        raise ProtocolError(f"need at least 10 scored images for 70/10/20 splits, got {y.size}")
    if np.ptp(y) == 0:
        raise ProtocolError(f"all {y.size} scores are equal ({y[0]:g}): a correlation with "
                            f"them is undefined; give scores that differ")
    grid = list(grid) if grid is not None else candidate_grid(models)
    group_array = None if groups is None else np.asarray(groups)
    splits = make_splits(y.size, group_array, n_splits=n_splits, seed=seed)
    results = []
    from tqdm.auto import tqdm

    for index, (train, val, test) in enumerate(tqdm(splits, desc="splits", disable=not progress,
                                                    file=sys.stderr)):
        mean, scale = standardize_stats(x[train])
        xs = (x[train] - mean) / scale
        y_mean = float(y[train].mean())
        coefs = fit_candidates(xs, y[train] - y_mean, grid, max_iter=max_iter)
        xv = (x[val] - mean) / scale
        val_srcc = {c: _safe(metrics.srcc, xv @ coefs[c] + y_mean, y[val]) for c in grid}
        best = max(grid, key=lambda c: _sort_key(val_srcc[c]))  # first of equals wins
        prediction = ((x[test] - mean) / scale) @ coefs[best] + y_mean
        results.append(SplitResult(
            index=index, train=train, val=val, test=test, chosen=best,
            val_srcc=val_srcc[best], srcc=_safe(metrics.srcc, prediction, y[test]),
            plcc=_safe(metrics.plcc_logistic, prediction, y[test]),
            plcc_raw=_safe(metrics.plcc, prediction, y[test]), test_prediction=prediction))
        if should_stop is not None and should_stop():
            raise Stopped(f"stopped after split {index + 1} of {len(splits)}")
    if all(math.isnan(r.srcc) for r in results):
        raise ProtocolError(f"no split has a defined test SRCC: the predictions (or the test "
                            f"scores) are constant on every test part of {y.size} images; "
                            f"the features carry no variation the regressor can use")
    return ProtocolResult(splits=results, scores=y, groups=group_array, n_features=x.shape[1],
                          seed=seed, higher_is_better=higher_is_better, grid=grid,
                          names=None if names is None else [str(n) for n in names])


def fit_final(features, scores, candidate: Candidate | ProtocolResult, *,
              higher_is_better: bool | None = None,
              feature_names: Sequence[str] = FEATURE_ORDER, calibrate: bool = True) -> Regressor:
    """The regressor to keep: ``candidate`` (or ``result.chosen``) refitted on all images.

    Passing the ProtocolResult also takes its score direction unless
    ``higher_is_better`` is given. ``calibrate`` (default): the refitted
    predictions are then mapped onto the training scores' scale by the
    least-squares line ``slope * prediction + offset`` (slope > 0), folded into
    ``coef`` and ``intercept``. The protocol picks the penalty by SRCC, which
    ignores scale, so a strong penalty can shrink every prediction to near the
    mean score (all within 0.01 of it); the line puts them back on the scores'
    own scale and changes no correlation or ranking. A line with slope <= 0
    (predictions that do not follow the training scores at all) is not applied.
    """
    if isinstance(candidate, ProtocolResult):
        if higher_is_better is None:
            higher_is_better = candidate.higher_is_better
        candidate = candidate.chosen
    regressor = fit_regressor(features, scores, candidate,
                              higher_is_better=True if higher_is_better is None else
                              higher_is_better, feature_names=feature_names)
    return calibrated(regressor, features, scores) if calibrate else regressor


def calibrated(regressor: Regressor, features, scores) -> Regressor:
    """``regressor`` with its predictions on ``features`` mapped by the least-squares
    line onto ``scores`` (see :func:`fit_final`); unchanged when that line's slope
    is not positive."""
    y = np.asarray(scores, dtype=np.float64)
    p = regressor.predict(features)
    if np.ptp(p) <= 1e-12 * max(1.0, float(np.abs(p).max())):  # one value for every image
        return regressor
    slope = float(np.mean((p - p.mean()) * (y - y.mean())) / np.var(p))
    if not slope > 0 or not np.isfinite(slope):
        return regressor
    offset = float(y.mean() - slope * p.mean())
    return dataclasses.replace(regressor, coef=regressor.coef * slope,
                               intercept=regressor.intercept * slope + offset,
                               calibration=(slope, offset))

