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
4. Reported: the median over the splits of each number, and every split.

Hyper-parameters are relative, so one grid fits every dataset size and score
scale: Ridge's penalty is ``alpha = alpha_rel * n_train`` on
``||y - Xw||^2 + alpha ||w||^2`` (standardised X has ``X^T X`` diagonal
``n_train``); ElasticNet's is ``alpha = alpha_rel * std(y_train)`` in
scikit-learn's per-sample objective. The Ridge path is solved for all values
at once from one eigendecomposition (the same solution as
``sklearn.linear_model.Ridge``, checked in the tests); ElasticNet runs
``sklearn.linear_model.enet_path`` with warm starts.

:func:`fit_final` refits the most often chosen model on all images;
:class:`Regressor` saves it as plain arrays (``regressor.npz`` +
``regressor.json``), never pickle.

Python API::

    from reiqa_jax.regress import run_protocol, write_report, fit_final, Regressor
    result = run_protocol(features, scores, groups=None, n_splits=10, seed=0)
    result.srcc_median, result.plcc_median, result.splits[0].srcc
    write_report(result, "out/")                 # report.json, scatter.png
    regressor = fit_final(features, scores, result.chosen)
    regressor.save("model/"); Regressor.load("model/").quality(features)
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from reiqa_jax import metrics
from reiqa_jax.errors import ReiqaError, one_line

FEATURE_ORDER = ("content", "quality")  # the Re-IQA feature is content ⊕ quality
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 9))
# Smaller ElasticNet penalties cost minutes per fit on 8192-d features and lose
# to Ridge on validation anyway (measured on 1400 x 8192 synthetic features).
ELASTICNET_ALPHAS = (0.01, 0.1, 1.0)
ELASTICNET_L1_RATIOS = (0.1, 0.5, 0.9)
MODELS = ("ridge", "elasticnet")
FRACTIONS = (0.7, 0.1, 0.2)
REGRESSOR_FORMAT = "reiqa-jax-regressor"


class ProtocolError(ReiqaError, ValueError):
    """Inputs the protocol cannot run on; the message is one line."""


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


# ----------------------------------------------------------------------------
# the regressor a model directory keeps

@dataclasses.dataclass
class Regressor:
    """A fitted linear quality regressor: ``((x - mean) / scale) @ coef + intercept``.

    ``predict`` gives the dataset's own units (MOS or DMOS); ``quality`` gives
    higher-is-better scores: for a DMOS-trained regressor (``higher_is_better``
    False) it is ``score_range[0] + score_range[1] - predict(x)``, the DMOS
    mirrored within the range of the training scores.
    ``features``: which feature blocks, concatenated in this order, it reads
    (``("content", "quality")`` for the Re-IQA feature).
    """

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    model: str = "ridge"
    alpha: float = 1.0
    l1_ratio: float | None = None
    higher_is_better: bool = True
    score_range: tuple[float, float] = (0.0, 1.0)
    features: tuple[str, ...] = FEATURE_ORDER
    n_train: int = 0

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[0])

    def predict(self, x) -> np.ndarray:
        """(N, D) features -> (N,) predictions in the training scores' units."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected (N, {self.n_features}) features, got {x.shape}")
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def quality(self, x) -> np.ndarray:
        """(N,) scores where higher is always better (see the class doc)."""
        prediction = self.predict(x)
        if self.higher_is_better:
            return prediction
        return self.score_range[0] + self.score_range[1] - prediction

    def save(self, directory) -> None:
        """Writes ``regressor.npz`` (float64 arrays) and ``regressor.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "regressor.npz", coef=self.coef.astype(np.float64),
                 intercept=np.float64(self.intercept), mean=self.mean.astype(np.float64),
                 scale=self.scale.astype(np.float64))
        header = {
            "format": REGRESSOR_FORMAT, "version": 1,
            "prediction": "((x - mean) / scale) @ coef + intercept",
            "model": self.model, "alpha": self.alpha, "l1_ratio": self.l1_ratio,
            "higher_is_better": self.higher_is_better,
            "score_range": [float(v) for v in self.score_range],
            "quality": ("prediction" if self.higher_is_better else
                        "score_range[0] + score_range[1] - prediction"),
            "features": list(self.features), "n_features": self.n_features,
            "n_train": self.n_train,
        }
        (directory / "regressor.json").write_text(json.dumps(header, indent=2) + "\n")

    @classmethod
    def load(cls, directory) -> "Regressor":
        """Reads what :meth:`save` wrote; ValueError (one line) if it is not there or broken."""
        directory = Path(directory)
        try:
            header = json.loads((directory / "regressor.json").read_text())
            with np.load(directory / "regressor.npz", allow_pickle=False) as arrays:
                coef, intercept = arrays["coef"], float(arrays["intercept"])
                mean, scale = arrays["mean"], arrays["scale"]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"no readable regressor in {directory}: "
                             f"{one_line(exc)}") from None
        if header.get("format") != REGRESSOR_FORMAT:
            raise ValueError(f"{directory / 'regressor.json'} is not a {REGRESSOR_FORMAT} file")
        if not coef.shape == mean.shape == scale.shape or coef.ndim != 1:
            raise ValueError(f"{directory}: regressor arrays have inconsistent shapes")
        return cls(coef=coef, intercept=intercept, mean=mean, scale=scale,
                   model=header["model"], alpha=header["alpha"], l1_ratio=header["l1_ratio"],
                   higher_is_better=bool(header["higher_is_better"]),
                   score_range=tuple(header["score_range"]),
                   features=tuple(header["features"]), n_train=int(header.get("n_train", 0)))


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

    def _median(self, name: str) -> float:
        values = np.array([getattr(s, name) for s in self.splits], dtype=np.float64)
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
        order = sorted(range(len(self.splits)),
                       key=lambda i: (_sort_key(self.splits[i].srcc), i))
        return order[(len(order) - 1) // 2]

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
                 progress: bool = False, max_iter: int = 2000) -> ProtocolResult:
    """Runs the protocol (module doc) on ``features`` (N, D) and ``scores`` (N,).

    groups: (N,) content labels; splits are disjoint by group. models: which of
    "ridge", "elasticnet" to search (ignored when ``grid`` is given).
    higher_is_better: the scores' direction, recorded for the report and the
    regressor (metrics are computed in the scores' own direction, as published).
    names: optional (N,) image names, kept for the report. progress: a bar on stderr.
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
    return ProtocolResult(splits=results, scores=y, groups=group_array, n_features=x.shape[1],
                          seed=seed, higher_is_better=higher_is_better, grid=grid,
                          names=None if names is None else [str(n) for n in names])


def fit_final(features, scores, candidate: Candidate | ProtocolResult, *,
              higher_is_better: bool | None = None,
              feature_names: Sequence[str] = FEATURE_ORDER) -> Regressor:
    """The regressor to keep: ``candidate`` (or ``result.chosen``) refitted on all images.

    Passing the ProtocolResult also takes its score direction unless
    ``higher_is_better`` is given.
    """
    if isinstance(candidate, ProtocolResult):
        if higher_is_better is None:
            higher_is_better = candidate.higher_is_better
        candidate = candidate.chosen
    return fit_regressor(features, scores, candidate,
                         higher_is_better=True if higher_is_better is None else higher_is_better,
                         feature_names=feature_names)


# ----------------------------------------------------------------------------
# reporting

def format_table(result: ProtocolResult, *, paper: tuple[float, float] | None = None,
                 title: str = "") -> str:
    """A plain-text table of the per-split and median numbers (and the paper's, if given)."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{'split':>6} {'n_test':>7} {'SRCC':>7} {'PLCC':>7} {'PLCC raw':>9}  chosen")
    for s in result.splits:
        lines.append(f"{s.index:>6} {s.test.size:>7} {s.srcc:>7.4f} {s.plcc:>7.4f} "
                     f"{s.plcc_raw:>9.4f}  {s.chosen.label()}")
    lines.append(f"{'median':>6} {'':>7} {result.srcc_median:>7.4f} {result.plcc_median:>7.4f} "
                 f"{result.plcc_raw_median:>9.4f}  ({result.n_images} images, "
                 f"{result.n_splits} splits)")
    if paper is not None:
        lines.append(f"{'paper':>6} {'':>7} {paper[0]:>7.3f} {paper[1]:>7.3f}")
    return "\n".join(lines)


def write_report(result: ProtocolResult, out_dir, *, extra: dict | None = None,
                 title: str = "") -> dict:
    """Writes ``out_dir/report.json`` and ``out_dir/scatter.png``; returns the report dict.

    The scatter shows the test images of the median split: prediction against
    score, with the fitted logistic. ``extra`` entries are added to the JSON.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = result.to_json()
    if extra:
        report.update(extra)
    split = result.splits[result.median_split]
    if result.names is not None:
        report["median_split_test"] = [
            {"name": result.names[i], "score": float(result.scores[i]), "prediction": float(p)}
            for i, p in zip(split.test, split.test_prediction)]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _scatter(result, out_dir / "scatter.png", title=title)
    return report


def _scatter(result: ProtocolResult, path: Path, *, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    split = result.splits[result.median_split]
    prediction, y = split.test_prediction, result.scores[split.test]
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120)
    ax.scatter(prediction, y, s=10, alpha=0.6, edgecolors="none")
    try:
        fit = metrics.logistic_fit(prediction, y)
        grid = np.linspace(prediction.min(), prediction.max(), 200)
        label = ("4-parameter logistic fit" if fit.converged else
                 "straight-line fit (the logistic did not fit)")
        ax.plot(grid, fit(grid), color="C3", lw=1.5, label=label)
        ax.legend(loc="best", fontsize=8)
    except ValueError:
        pass
    ax.set_xlabel("predicted score")
    ax.set_ylabel("subjective score (" + ("MOS" if result.higher_is_better else "DMOS") + ")")
    heading = f"{title}\n" if title else ""
    ax.set_title(f"{heading}test images of the median split ({split.index}): "
                 f"SRCC {split.srcc:.3f}, PLCC {split.plcc:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------
# features .npz + scores .csv -> the protocol's inputs (for `reiqa regress`)

_PATH_NAMES = ("path", "image_path", "image", "image_name", "filename", "file", "name")
_SCORE_NAMES = ("score", "mos", "dmos", "quality", "label")
_GROUP_NAMES = ("group", "content", "reference", "ref", "ref_img")


@dataclasses.dataclass
class ScoreRows:
    """A scores CSV: ``path`` cells as written, their resolved paths, scores, groups (or None)."""

    path: Path
    entries: list[str]
    resolved: list[str]
    scores: np.ndarray
    groups: list[str] | None


def read_scores_csv(path) -> ScoreRows:
    """Reads ``path,score[,group]`` (header optional; columns found by name when present).

    Relative paths are resolved against the CSV's folder. ProtocolError (one
    line) for an unreadable file or a score that is not a number.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [r for r in csv.reader(handle) if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ProtocolError(f"cannot read {path}: {one_line(exc)}") from None
    if not rows:
        raise ProtocolError(f"{path} is empty")
    columns = {"path": 0, "score": 1, "group": 2 if len(rows[0]) > 2 else None}
    first_line = 1
    if len(rows[0]) < 2 or _is_number(rows[0][1]) is False:
        first_line = 2
        header = [cell.strip().lower() for cell in rows[0]]
        for key, names in (("path", _PATH_NAMES), ("score", _SCORE_NAMES),
                           ("group", _GROUP_NAMES)):
            found = next((header.index(n) for n in names if n in header), None)
            if found is not None:
                columns[key] = found
            elif key == "group":
                columns[key] = None
        rows = rows[1:]
    entries, scores, groups = [], [], []
    for number, row in enumerate(rows, start=first_line):
        if len(row) <= max(columns["path"], columns["score"]):
            raise ProtocolError(f"{path}: row {number} has too few columns: {','.join(row)}")
        entries.append(row[columns["path"]].strip())
        value = _is_number(row[columns["score"]])
        if value is False:
            raise ProtocolError(f"{path}: row {number}: score {row[columns['score']]!r} "
                                f"is not a number")
        scores.append(value)
        if columns["group"] is not None:
            groups.append(row[columns["group"]].strip() if len(row) > columns["group"] else "")
    resolved = [_resolve(e, path.parent) for e in entries]
    return ScoreRows(path=path, entries=entries, resolved=resolved,
                     scores=np.asarray(scores, np.float64),
                     groups=groups if columns["group"] is not None else None)


def _is_number(cell: str):
    try:
        value = float(cell)
    except ValueError:
        return False
    return value if math.isfinite(value) else False


def _resolve(entry: str, base: Path) -> str:
    candidate = Path(entry).expanduser()
    return str((candidate if candidate.is_absolute() else base / candidate).resolve())


@dataclasses.dataclass
class FeatureFile:
    """An extraction ``.npz``: per-image keys in the file's order.

    ``entries`` are the inputs as written to ``reiqa extract`` (the resolved
    paths when the file predates that key); ``blocks`` maps "content" /
    "quality" to (N, D) arrays; ``checkpoints`` the encoder directories that
    made them ('' when not recorded).
    """

    path: Path
    paths: list[str]
    entries: list[str]
    blocks: dict[str, np.ndarray]
    failed: list[str]
    failed_entries: list[str]
    errors: list[str]
    checkpoints: dict[str, str]

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        return np.concatenate([self.blocks[n] for n in names], axis=1)


def read_features(path) -> FeatureFile:
    """Loads an extraction ``.npz`` (old or new key set); ProtocolError if unusable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"cannot read features {path}: {one_line(exc)}") from None
    if "paths" not in arrays:
        raise ProtocolError(f"{path} has no 'paths' array: not a reiqa extract file")
    paths = [str(p) for p in arrays["paths"]]
    blocks = {n: arrays[n] for n in FEATURE_ORDER if n in arrays}
    if not blocks:
        raise ProtocolError(f"{path} has neither 'quality' nor 'content' features")
    for name, block in blocks.items():
        if block.ndim != 2 or block.shape[0] != len(paths):
            raise ProtocolError(f"{path}: '{name}' has shape {block.shape} for {len(paths)} paths")
    entries = [str(e) for e in arrays["entries"]] if "entries" in arrays else list(paths)
    failed = [str(p) for p in arrays.get("failed", np.zeros(0, str))]
    failed_entries = ([str(p) for p in arrays["failed_entries"]] if "failed_entries" in arrays
                      else list(failed))
    checkpoints = {n: _scalar_text(arrays.get(f"{n}_ckpt")) for n in ("quality", "content")}
    return FeatureFile(path=path, paths=paths, entries=entries, blocks=blocks, failed=failed,
                       failed_entries=failed_entries,
                       errors=[str(e) for e in arrays.get("errors", np.zeros(0, str))],
                       checkpoints=checkpoints)


def _scalar_text(value) -> str:
    """A 0-d (or one-element) string array as str; '' when absent or empty."""
    if value is None or np.size(value) == 0:
        return ""
    return str(np.asarray(value).reshape(-1)[0])


@dataclasses.dataclass
class JoinedData:
    """Scores joined to features: ``index`` (M,) rows of the feature file, with
    their scores, groups and names; the CSV rows left out, with reasons."""

    index: np.ndarray
    scores: np.ndarray
    groups: list[str] | None
    names: list[str]
    unmatched: list[str]
    failed: list[str]
    duplicates: list[str]


def join_scores(features: FeatureFile, rows: ScoreRows) -> JoinedData:
    """Matches each CSV row to a feature row: first its path cell against the
    npz ``entries`` as written, then its resolved path against the resolved npz
    paths. Rows that failed extraction, match nothing, or repeat an image
    already matched are listed, not used."""
    by_entry: dict[str, int] = {}
    for i, e in enumerate(features.entries):
        by_entry.setdefault(e, i)
    by_path: dict[str, int] = {}
    for i, p in enumerate(features.paths):
        by_path.setdefault(str(Path(p).expanduser().resolve()), i)
    failed_keys = set(features.failed_entries) | {
        str(Path(p).expanduser().resolve()) for p in features.failed}
    index, scores, groups, names = [], [], [], []
    unmatched, failed, duplicates = [], [], []
    used: set[int] = set()
    for k, (entry, resolved) in enumerate(zip(rows.entries, rows.resolved)):
        row = by_entry.get(entry, by_path.get(resolved))
        if row is None:
            (failed if entry in failed_keys or resolved in failed_keys else unmatched).append(entry)
            continue
        if row in used:
            duplicates.append(entry)
            continue
        used.add(row)
        index.append(row)
        scores.append(rows.scores[k])
        names.append(entry)
        if rows.groups is not None:
            groups.append(rows.groups[k])
    return JoinedData(index=np.asarray(index, dtype=np.int64),
                      scores=np.asarray(scores, np.float64),
                      groups=groups if rows.groups is not None else None, names=names,
                      unmatched=unmatched, failed=failed, duplicates=duplicates)
