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




def test_damaged_regressors_are_refused_in_one_line(tmp_path):
    x, y, _ = linear_data(n=60, d=8)
    protocol.fit_regressor(x, y, Candidate("ridge", 0.1)).save(tmp_path / "good")
    good = (tmp_path / "good" / "regressor.npz").read_bytes()
    header = (tmp_path / "good" / "regressor.json").read_text()

    def damaged(name, npz=good, json_text=header):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "regressor.npz").write_bytes(npz)
        (folder / "regressor.json").write_text(json_text)
        return folder

    with np.load(tmp_path / "good" / "regressor.npz") as arrays:
        values = dict(arrays)
    values["scale"][0] = 0.0
    np.savez(tmp_path / "zero_scale.npz", **values)
    values["scale"][0], values["mean"][1] = 1.0, np.inf
    np.savez(tmp_path / "inf.npz", **values)
    cases = [
        (damaged("truncated", npz=good[: len(good) // 2]), "no readable regressor"),
        (damaged("inf", npz=(tmp_path / "inf.npz").read_bytes()), "mean hold NaN or infinite"),
        (damaged("zero", npz=(tmp_path / "zero_scale.npz").read_bytes()), "scale holds values <= 0"),
        (damaged("json", json_text=header.replace('"alpha"', '"alpha_"')), "is damaged"),
        (damaged("count", json_text=header.replace('"n_features": 8', '"n_features": 9')),
         "says 9 features"),
        (tmp_path, "no readable regressor"),
    ]
    for folder, message in cases:
        with pytest.raises(RegressorError, match=message) as info:
            Regressor.load(folder)
        assert "\n" not in str(info.value)
