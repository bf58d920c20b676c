"""The saved regressor: plain arrays, identical predictions, damaged files refused."""

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from reiqa_jax.scoring import protocol
from reiqa_jax.scoring.protocol import Candidate
from reiqa_jax.scoring.regressor import Regressor, RegressorError
from scoring_testing import linear_data


@pytest.mark.parametrize("candidate", [Candidate("ridge", 0.01),
                                       Candidate("elasticnet", 0.01, 0.5)])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_saved_regressor_predicts_identically(tmp_path, candidate, higher_is_better):
    x, y, _ = linear_data(n=120)
    regressor = protocol.fit_regressor(x, y, candidate, higher_is_better=higher_is_better)
    regressor.save(tmp_path)
    loaded = Regressor.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(x), regressor.predict(x))
    np.testing.assert_array_equal(loaded.quality(x), regressor.quality(x))
    assert (loaded.model, loaded.alpha, loaded.l1_ratio) == (candidate.model, candidate.alpha,
                                                             candidate.l1_ratio)
    # Plain arrays only: loads with pickling disabled.
    with np.load(tmp_path / "regressor.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"coef", "intercept", "mean", "scale"}
    header = json.loads((tmp_path / "regressor.json").read_text())
    assert header["higher_is_better"] is higher_is_better
    # quality() is higher-is-better: for DMOS it runs against the prediction.
    quality, prediction = loaded.quality(x), loaded.predict(x)
    assert np.corrcoef(quality, prediction)[0, 1] == pytest.approx(1 if higher_is_better else -1)
    if candidate.model == "ridge":
        xs = (x - regressor.mean) / regressor.scale
        expected = Ridge(alpha=0.01 * len(y)).fit(xs, y).predict(xs)
        np.testing.assert_allclose(regressor.predict(x), expected, rtol=1e-8)


