"""Agreement between predicted quality and subjective scores: SRCC, PLCC, logistic fit.

The IQA literature (and the Re-IQA paper) reports two numbers per dataset:

* **SRCC**, Spearman's rank correlation: monotonic agreement, unaffected by
  any increasing transform of the predictions;
* **PLCC**, Pearson's linear correlation, computed *after* mapping the
  predictions through a 4-parameter logistic fitted to the scores (VQEG,
  "Final report ... Phase II", 2003; Sheikh, Sabir, Bovik 2006), which
  removes the non-linearity between a model's scale and the subjective one:

      f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2

  ``plcc`` is the raw Pearson correlation; ``plcc_logistic`` the fitted one
  (negative when the fitted curve decreases, so its sign agrees with SRCC).

All functions take 1-d array-likes of equal length (at least 3 values) and
return Python floats; a correlation with a constant input is NaN, as in scipy.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from scipy import optimize, stats


def _pair(pred, y) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if pred.shape != y.shape:
        raise ValueError(f"predictions and scores differ in length: {pred.size} != {y.size}")
    if pred.size < 3:
        raise ValueError(f"need at least 3 values, got {pred.size}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(y))):
        raise ValueError("predictions and scores must be finite")
    return pred, y


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if denominator == 0.0:
        return float("nan")
    return float(np.clip(np.dot(a, b) / denominator, -1.0, 1.0))


def srcc(pred, y) -> float:
    """Spearman rank-order correlation (ties get average ranks, as scipy.stats.spearmanr)."""
    pred, y = _pair(pred, y)
    return _pearson(stats.rankdata(pred), stats.rankdata(y))


def plcc(pred, y) -> float:
    """Pearson linear correlation of the raw predictions with the scores."""
    pred, y = _pair(pred, y)
    return _pearson(pred, y)


def logistic4(x, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The 4-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    x = np.asarray(x, dtype=np.float64)
    z = np.clip(-(x - b3) / max(abs(b4), 1e-12), -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


@dataclasses.dataclass(frozen=True)
class LogisticFit:
    """A fitted 4-parameter logistic. ``converged`` is False when the fit failed
    and the parameters describe the best straight line instead (still monotone)."""

    b1: float
    b2: float
    b3: float
    b4: float
    converged: bool = True

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.b1, self.b2, self.b3, self.b4)

    def __call__(self, x) -> np.ndarray:
        if not self.converged:  # b1 * x + b2: the linear fallback
            return self.b1 * np.asarray(x, dtype=np.float64) + self.b2
        return logistic4(x, *self.params)


def logistic_fit(pred, y, *, maxfev: int = 20000) -> LogisticFit:
    """Least-squares fit of the 4-parameter logistic mapping ``pred`` onto ``y``.

    Start: b1 = max(y), b2 = min(y), b3 = mean(pred), b4 = std(pred) (flipped
    when the correlation is negative, so decreasing relations fit too). If the
    optimiser fails, or there are fewer than 5 points for 4 parameters, the
    least-squares straight line is returned with ``converged=False``.
    """
    pred, y = _pair(pred, y)
    if pred.size < 5 or np.ptp(pred) == 0.0:
        return _line(pred, y)
    spread = float(np.std(pred)) or 1.0
    start = [float(y.max()), float(y.min()), float(pred.mean()), spread]
    if _pearson(pred, y) < 0:
        start[0], start[1] = start[1], start[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(logistic4, pred, y, p0=start, maxfev=maxfev)
        if np.all(np.isfinite(params)):
            return LogisticFit(*(float(p) for p in params))
    except (RuntimeError, ValueError, TypeError, FloatingPointError):
        pass
    return _line(pred, y)


def _line(pred: np.ndarray, y: np.ndarray) -> LogisticFit:
    if np.ptp(pred) == 0.0:
        return LogisticFit(0.0, float(y.mean()), 0.0, 1.0, converged=False)
    slope, intercept = np.polyfit(pred, y, 1)
    return LogisticFit(float(slope), float(intercept), 0.0, 1.0, converged=False)


def plcc_logistic(pred, y) -> float:
    """Pearson correlation after the 4-parameter logistic fit of ``pred`` to ``y``.

    Signed like the fitted curve: negative when it decreases, i.e. when the
    predictions run against the scores (a plain correlation of the fitted
    values would always be positive and hide that).
    """
    pred, y = _pair(pred, y)
    fit = logistic_fit(pred, y)
    increasing = fit.b1 > 0 if not fit.converged else fit.b1 > fit.b2
    value = _pearson(fit(pred), y)
    return value if increasing or math.isnan(value) else -abs(value)


def all_metrics(pred, y) -> dict[str, float]:
    """{"srcc", "plcc" (after the logistic fit), "plcc_raw"} of one prediction set."""
    return {"srcc": srcc(pred, y), "plcc": plcc_logistic(pred, y), "plcc_raw": plcc(pred, y)}
