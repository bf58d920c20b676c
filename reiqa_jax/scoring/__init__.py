"""From features to quality scores: the path ``reiqa extract`` -> ``regress`` -> ``score``.

One module per stage, in the order the data goes through them:

=================  ===========================================================
``features``       the features ``.npz`` (:class:`Features`, read and write)
                   and the resumable shard store that ``extract``, ``score``
                   and ``evaluate`` save finished images into
``scores_csv``     subjective scores (``path,score[,group]``) and their join
                   to the features
``protocol``       the paper's protocol: splits, Ridge / ElasticNet fits,
                   medians over the splits, the final refit
``regressor``      the fitted :class:`Regressor` alone, as plain arrays (all
                   that scoring needs; no scikit-learn)
``report``         the protocol's table, ``report.json`` and scatter plot
``model_dir``      model folders (two encoders + a regressor) and scoring
                   images with them
``evaluate``       a dataset's files -> features -> protocol (``reiqa evaluate``)
=================  ===========================================================

Nothing is imported here: each command loads only the stages it uses.
"""
