"""The fitted quality regressor, alone: what a model folder keeps and scoring needs.

``regressor.npz`` holds float64 arrays ``coef`` (D,), ``intercept`` (),
``mean`` (D,), ``scale`` (D,); ``regressor.json`` the rest (model, penalty,
score direction and range, feature blocks, calibration). Plain arrays, never pickle.
Made by :func:`reiqa_jax.scoring.protocol.fit_final`; this module needs
numpy only.
"""
from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from reiqa_jax.errors import ReiqaError, one_line
from reiqa_jax.scoring.features import FEATURE_ORDER, write_npz

REGRESSOR_FORMAT = "reiqa-jax-regressor"
ARRAYS = ("coef", "intercept", "mean", "scale")


class RegressorError(ReiqaError, ValueError):
    """A saved regressor that is missing or unusable; the message is one line."""


@dataclasses.dataclass
class Regressor:
    """A fitted linear quality regressor: ``((x - mean) / scale) @ coef + intercept``.

    ``predict`` gives the dataset's own units (MOS or DMOS); ``quality`` gives
    higher-is-better scores: for a DMOS-trained regressor (``higher_is_better``
    False) it is ``score_range[0] + score_range[1] - predict(x)``, the DMOS
    mirrored within the range of the training scores.
    ``features``: which feature blocks, concatenated in this order, it reads
    (``("content", "quality")`` for the Re-IQA feature). ``calibration``:
    the (slope, offset) of the line that ``fit_final`` folded into ``coef`` and
    ``intercept`` to put predictions on the training scores' scale (None: none).
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
    calibration: tuple[float, float] | None = None

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
        write_npz(directory / "regressor.npz", {
            "coef": self.coef.astype(np.float64), "intercept": np.float64(self.intercept),
            "mean": self.mean.astype(np.float64), "scale": self.scale.astype(np.float64)})
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
            "calibration": (None if self.calibration is None else
                            {"slope": float(self.calibration[0]),
                             "offset": float(self.calibration[1]),
                             "folded_into": "coef and intercept"}),
        }
        (directory / "regressor.json").write_text(json.dumps(header, indent=2) + "\n")

    @classmethod
    def load(cls, directory) -> "Regressor":
        """Reads what :meth:`save` wrote. RegressorError (one line) when it is missing,
        damaged (a truncated archive, a broken JSON) or not finite."""
        directory = Path(directory)
        npz, json_path = directory / "regressor.npz", directory / "regressor.json"
        try:
            header = json.loads(json_path.read_text())
            with np.load(npz, allow_pickle=False) as data:
                arrays = {name: np.asarray(data[name], np.float64) for name in ARRAYS}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise RegressorError(f"no readable regressor in {directory}: "
                                 f"{one_line(exc)}") from None
        if not isinstance(header, dict) or header.get("format") != REGRESSOR_FORMAT:
            raise RegressorError(f"{json_path} is not a {REGRESSOR_FORMAT} file")
        coef, mean, scale = arrays["coef"], arrays["mean"], arrays["scale"]
        if coef.ndim != 1 or not coef.shape == mean.shape == scale.shape \
                or arrays["intercept"].size != 1:
            raise RegressorError(f"{npz}: the regressor's arrays have inconsistent shapes")
        bad = [name for name in ARRAYS if not np.all(np.isfinite(arrays[name]))]
        if bad:
            raise RegressorError(f"{npz}: {', '.join(bad)} hold NaN or infinite values "
                                 f"(a damaged file; fit the model again)")
        if np.any(scale <= 0):
            raise RegressorError(f"{npz}: scale holds values <= 0 (a damaged file)")
        try:
            score_range = tuple(float(v) for v in header["score_range"])
            features = tuple(str(name) for name in header["features"])
            regressor = cls(coef=coef, intercept=float(arrays["intercept"].reshape(())),
                            mean=mean, scale=scale, model=str(header["model"]),
                            alpha=float(header["alpha"]), l1_ratio=header["l1_ratio"],
                            higher_is_better=bool(header["higher_is_better"]),
                            score_range=score_range, features=features,
                            n_train=int(header.get("n_train", 0)),
                            calibration=_calibration(header.get("calibration")))
        except (KeyError, TypeError, ValueError) as exc:
            raise RegressorError(f"{json_path} is damaged ({type(exc).__name__}: "
                                 f"{one_line(exc)})") from None
        if len(score_range) != 2 or not all(np.isfinite(score_range)):
            raise RegressorError(f"{json_path}: score_range must be two finite numbers")
        if header.get("n_features", coef.size) != coef.size:
            raise RegressorError(f"{json_path} says {header['n_features']} features, "
                                 f"{npz} has {coef.size}")
        return regressor


def _calibration(entry) -> tuple[float, float] | None:
    """regressor.json's ``calibration`` (absent or null in folders made before it)."""
    if entry is None:
        return None
    return float(entry["slope"]), float(entry["offset"])
