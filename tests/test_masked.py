"""The masked encoder: a padded image gives its own activations at every stage, and the memory bound."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from skimage import data

from reiqa_jax.checkpoint import build_model
from reiqa_jax.extract import BYTES_PER_PIXEL, _encode
from reiqa_jax.models import ReIQAModel
from reiqa_jax.models.masked import masked_features, masked_stages, valid_regions
from reiqa_jax.models.resnet import max_pool_3x3_s2
from test_models import random_arrays

PADDED = (128, 160)
# Real photos cut to odd sizes (and one tiny one): (name, height, width).
CROPS = [("astronaut", 97, 131), ("coffee", 61, 45), ("rocket", 2, 3)]


def _model(depth, width, seed):
    """Random weights and non-trivial BatchNorm statistics, built without running any init."""
    arch = dict(depth=depth, width=width, feat_dim=16)
    return build_model(arch, random_arrays(arch, seed))


def _photos():
    out = []
    for name, h, w in CROPS:
        image = getattr(data, name)()
        out.append(image[40:40 + h, 60:60 + w].astype(np.float32) / 255.0)
    return out


@nnx.jit
def _plain_stages(encoder, x):
    """The unmodified ResNet on an unpadded image, stage by stage."""
    x = nnx.relu(encoder.bn1(encoder.conv1(x)))
    out = [x]
    x = max_pool_3x3_s2(x)
    out.append(x)
    for stage in encoder.stages():
        for block in stage:
            x = block(x)
        out.append(x)
    return out


@nnx.jit
def _masked(encoder, x, regions):
    return masked_stages(encoder, x, regions), masked_features(encoder, x, regions)


@pytest.mark.parametrize("depth, width", [(18, 0.25), (50, 0.125)])  # basic and bottleneck blocks
def test_every_stage_of_a_padded_image_equals_the_unpadded_one(depth, width):
    model = _model(depth, width, seed=depth)
    encoder = model.encoder
    photos = _photos()
    rng = np.random.default_rng(0)
    # Garbage outside the valid regions, and an empty slot at the end.
    batch = rng.uniform(-5, 5, (len(photos) + 1, *PADDED, 3)).astype(np.float32)
    sizes = np.zeros((len(photos) + 1, 2), np.int64)
    for i, photo in enumerate(photos):
        batch[i, :photo.shape[0], :photo.shape[1]] = photo
        sizes[i] = photo.shape[:2]
    regions = valid_regions(encoder, sizes, PADDED)
    stages, features = _masked(encoder, jnp.asarray(batch), regions)
    features = np.asarray(features)
    for i, photo in enumerate(photos):
        reference = _plain_stages(encoder, jnp.asarray(photo[None]))
        for level, (got, want) in enumerate(zip(stages, reference)):
            got, want = np.asarray(got[i]), np.asarray(want[0])
            h, w = want.shape[:2]
            scale = max(1.0, np.abs(want).max())
            np.testing.assert_allclose(got[:h, :w], want, rtol=0, atol=1e-5 * scale,
                                       err_msg=f"{CROPS[i]} stage {level}")
            assert not got[h:].any() and not got[:, w:].any(), "not zero outside"
        pooled = np.asarray(reference[-1][0]).mean(axis=(0, 1))  # what ResNet.__call__ returns
        np.testing.assert_allclose(features[i], pooled, rtol=0, atol=1e-5 * np.abs(pooled).max())
    assert not features[-1].any()  # the empty slot


def test_valid_sizes_must_fit_the_padded_shape():
    encoder = _model(18, 0.25, 0).encoder
    with pytest.raises(ValueError, match="valid sizes"):
        valid_regions(encoder, np.array([[10, 200]]), (64, 64))


def test_resnet50_step_stays_within_the_memory_per_pixel_budget():
    """XLA's working memory for one masked ResNet-50 step is below BYTES_PER_PIXEL per pixel.

    Without the materialised block outputs (see models/masked.py) it is ~270 B/px;
    the plain unmasked ResNet takes ~290 B/px in XLA.
    """
    abstract = nnx.eval_shape(lambda: ReIQAModel(50, 1, rngs=nnx.Rngs(0)))
    abstract.eval()
    graphdef, state = nnx.split(abstract)
    height, width = 256, 320
    regions = valid_regions(abstract.encoder, np.array([[height, width]]), (height, width))
    spec = jax.ShapeDtypeStruct
    compiled = _encode.lower(graphdef, state, spec((1, height, width, 3), jnp.uint8), regions,
                             spec((3,), jnp.float32), spec((3,), jnp.float32)).compile()
    per_pixel = compiled.memory_analysis().temp_size_in_bytes / (height * width)
    assert per_pixel <= BYTES_PER_PIXEL["float32"], per_pixel
