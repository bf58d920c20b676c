"""Model folders and scoring: the public names of :mod:`reiqa_jax.scoring.model_dir`,
under the import path scripts were written against::

    from reiqa_jax.quality_model import make_model_dir, load_quality_model, score_images
"""
from reiqa_jax.scoring.model_dir import (  # noqa: F401
    MODEL_FORMAT, MODEL_JSON, MODEL_VERSION, ModelDirError, QualityModel, ScoredImage,
    check_model_target, checkpoint_sources, load_quality_model, make_model_dir, score_images,
    write_scores_csv)
