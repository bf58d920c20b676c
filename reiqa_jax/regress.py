"""The regression protocol's public names, gathered from :mod:`reiqa_jax.scoring`.

The protocol lives in ``scoring/protocol.py``, the saved regressor in
``scoring/regressor.py``, the report in ``scoring/report.py`` and the scores
CSV in ``scoring/scores_csv.py``; this module keeps ``from reiqa_jax import
regress`` working for scripts written against it::

    from reiqa_jax import regress
    result = regress.run_protocol(features, scores, groups=None, n_splits=10, seed=0)
    regress.write_report(result, "out/")                 # report.json, scatter.png
    regressor = regress.fit_final(features, scores, result)
    regressor.save("model/"); regress.Regressor.load("model/").quality(features)
"""
from reiqa_jax.scoring.features import FEATURE_ORDER  # noqa: F401
from reiqa_jax.scoring.protocol import (  # noqa: F401
    ELASTICNET_ALPHAS, ELASTICNET_L1_RATIOS, FRACTIONS, MODELS, RIDGE_ALPHAS, Candidate,
    ProtocolError, ProtocolResult, RidgePath, SplitResult, Stopped, candidate_grid,
    fit_candidates, fit_final, fit_regressor, make_splits, run_protocol, standardize_stats)
from reiqa_jax.scoring.regressor import REGRESSOR_FORMAT, Regressor, RegressorError  # noqa: F401
from reiqa_jax.scoring.report import format_table, small_test_note, write_report  # noqa: F401
from reiqa_jax.scoring.scores_csv import (  # noqa: F401
    JoinedData, ScoreRows, ScoresCsvError, join_scores, read_scores_csv)
