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


def test_protocol_refuses_what_it_cannot_split():
    with pytest.raises(protocol.ProtocolError, match="at least 10"):
        protocol.run_protocol(np.ones((5, 3)), np.arange(5.0))
    with pytest.raises(protocol.ProtocolError, match="models"):
        protocol.run_protocol(np.ones((20, 3)), np.arange(20.0), models=("lasso",))


