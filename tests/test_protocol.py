"""The regression protocol: splits, Ridge/ElasticNet, medians, the final refit."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from reiqa_jax.scoring import protocol
from scoring_testing import linear_data


def test_splits_are_reproducible_disjoint_and_70_10_20():
    groups = np.repeat(np.arange(30), 5)
    a = protocol.make_splits(150, groups, n_splits=10, seed=3)
    b = protocol.make_splits(150, groups, n_splits=10, seed=3)
    c = protocol.make_splits(150, groups, n_splits=10, seed=4)
    assert all(np.array_equal(p, q) for s, t in zip(a, b) for p, q in zip(s, t))
    assert not all(np.array_equal(s[0], t[0]) for s, t in zip(a, c))
    assert len({tuple(s[2]) for s in a}) == 10  # ten different test sets
    for train, val, test in a:
        assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(150))
        # Content-disjoint: no reference image in two parts.
        parts = [set(groups[idx]) for idx in (train, val, test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert (len(parts[0]), len(parts[1]), len(parts[2])) == (21, 3, 6)
    train, val, test = protocol.make_splits(100, None, n_splits=1)[0]
    assert (train.size, val.size, test.size) == (70, 10, 20)
    with pytest.raises(protocol.ProtocolError, match="at least 3 groups"):
        protocol.make_splits(10, ["a"] * 5 + ["b"] * 5)


@pytest.mark.parametrize("n", [30, 80])  # kernel (n < d) and primal (n >= d) forms
def test_ridge_path_matches_sklearn_ridge(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 50))
    y = rng.normal(size=n)
    path = protocol.RidgePath(x, y)
    for alpha in (1e-2, 1.0, 100.0):
        expected = Ridge(alpha=alpha, fit_intercept=False).fit(x, y).coef_
        np.testing.assert_allclose(path.coef(alpha), expected, rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def fitted():
    x, y, groups = linear_data()
    return x, y, groups, protocol.run_protocol(x, y, groups, n_splits=4, seed=0,
                                              names=[f"img{i}.png" for i in range(len(y))])


def test_protocol_recovers_a_known_linear_signal(fitted):
    x, y, groups, result = fitted
    assert result.n_images == 240 and result.n_splits == 4 and result.n_features == 48
    assert result.srcc_median > 0.9 and result.plcc_median > 0.9
    assert result.plcc_median >= result.plcc_raw_median - 1e-3
    for split in result.splits:
        assert not set(groups[split.train]) & set(groups[split.test])
        assert split.chosen in result.grid
        assert split.test_prediction.shape == split.test.shape
    # Same inputs, same numbers (fixed seeds, deterministic solvers).
    again = protocol.run_protocol(x, y, groups, n_splits=4, seed=0)
    assert [s.srcc for s in again.splits] == [s.srcc for s in result.splits]
    # No signal, no correlation.
    noise = protocol.run_protocol(x, np.random.default_rng(9).normal(size=len(y)), groups,
                                 n_splits=2, models=("ridge",))
    assert abs(noise.srcc_median) < 0.4


def test_fit_final_takes_the_most_chosen_candidate(fitted):
    x, y, _, result = fitted
    regressor = protocol.fit_final(x, y, result)
    assert (regressor.model, regressor.alpha) == (result.chosen.model, result.chosen.alpha)
    assert regressor.n_train == len(y) and regressor.higher_is_better


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_fit_final_puts_a_strong_penalty_back_on_the_scores_scale(tmp_path, higher_is_better):
    """A strong ridge penalty shrinks every prediction to near the mean score; the
    final refit maps them back by the least-squares line onto the training
    scores (numpy's polyfit, restated), which keeps every ranking, and the saved
    model folder predicts the same numbers."""
    from reiqa_jax.scoring.regressor import Regressor

    x, y, _ = linear_data(n=120)
    strong = protocol.Candidate("ridge", 1e4)
    raw = protocol.fit_final(x, y, strong, calibrate=False)
    assert np.ptp(raw.predict(x)) < 0.01 * np.ptp(y) and raw.calibration is None
    final = protocol.fit_final(x, y, strong, higher_is_better=higher_is_better)
    slope, offset = np.polyfit(raw.predict(x), y, 1)
    np.testing.assert_allclose(final.calibration, (slope, offset), rtol=1e-9)
    np.testing.assert_allclose(final.predict(x), slope * raw.predict(x) + offset, rtol=1e-9)
    assert slope > 1e2
    np.testing.assert_array_equal(np.argsort(final.predict(x)), np.argsort(raw.predict(x)))
    assert final.predict(x).mean() == pytest.approx(y.mean())
    assert np.polyfit(final.predict(x), y, 1) == pytest.approx([1.0, 0.0], abs=1e-6)
    assert (final.model, final.alpha) == ("ridge", 1e4)
    # Quality for DMOS runs against the calibrated prediction within the score range.
    if not higher_is_better:
        np.testing.assert_allclose(final.quality(x), y.min() + y.max() - final.predict(x))
    final.save(tmp_path)
    loaded = Regressor.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(x), final.predict(x))
    assert loaded.calibration == pytest.approx(final.calibration)


def test_fit_final_applies_no_line_that_turns_the_ranking_round():
    """Predictions that run against the training scores would need a negative
    slope: that line is not applied (it would reverse every ranking)."""
    x, y, _ = linear_data(n=120)
    raw = protocol.fit_regressor(x, y, protocol.Candidate("ridge", 1.0))
    flipped = protocol.calibrated(raw, x, -y)
    assert flipped is raw and flipped.calibration is None
    constant = protocol.calibrated(raw, np.repeat(x[:1], len(y), axis=0), y)
    assert constant is raw


def test_protocol_refuses_what_it_cannot_split():
    with pytest.raises(protocol.ProtocolError, match="at least 10"):
        protocol.run_protocol(np.ones((5, 3)), np.arange(5.0))
    with pytest.raises(protocol.ProtocolError, match="models"):
        protocol.run_protocol(np.ones((20, 3)), np.arange(20.0), models=("lasso",))


