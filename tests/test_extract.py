"""Feature extraction: demo-exact features, batching by shape, bad inputs, devices, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bad_inputs import make_mixed_folder, photo
from reiqa_jax import cli
from reiqa_jax.checkpoint import save_model
from reiqa_jax.extract import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor, extract_features
from reiqa_jax.images import load_image
from reiqa_jax.models import ReIQAModel

ARCH = dict(depth=18, width=0.25)  # small and fast; the ResNet-50 path is in test_convert
FEAT = 2 * 128  # 512 * 0.25 per scale


def _randomise_batch_stats(model, seed):
    """Non-trivial running statistics, so eval-mode BatchNorm is not the identity."""
    rng = np.random.default_rng(seed)
    for path, stat in nnx.iter_graph(model):
        if isinstance(stat, nnx.BatchStat):
            shape = stat.get_value().shape
            name = path[-1]
            value = rng.uniform(0.5, 2.0, shape) if name == "var" else rng.normal(0, 0.2, shape)
            stat.set_value(jnp.asarray(value, jnp.float32))


@pytest.fixture(scope="module")
def models():
    quality = ReIQAModel(**ARCH, rngs=nnx.Rngs(0))
    content = ReIQAModel(**ARCH, rngs=nnx.Rngs(1))
    _randomise_batch_stats(quality, 0)
    _randomise_batch_stats(content, 1)
    return quality, content


@pytest.fixture(scope="module")
def checkpoints(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    save_model(root / "quality", models[0], meta={"source": "test"})
    save_model(root / "content", models[1], meta={"source": "test"})
    return root / "quality", root / "content"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return make_mixed_folder(tmp_path_factory.mktemp("mixed"))


@pytest.fixture(scope="module")
def cli_run(checkpoints, mixed, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "features.npz"
    folder = mixed["good"][0].parent
    argv = ["extract", "--quality-ckpt", str(checkpoints[0]), "--content-ckpt",
            str(checkpoints[1]), "-o", str(out), "--batch-size", "4", "--no-progress", str(folder)]
    return argv, out


@nnx.jit
def _encoder_call(model, x):
    return model.encoder(x)


def _direct_features(model, path, mean, std):
    """What the released demo computes, stated with the model called directly."""
    model.eval()
    loaded = load_image(path)
    feats = []
    for pixels in (loaded.full, loaded.half):
        x = (pixels[None].astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(
            std, np.float32)
        feats.append(np.asarray(_encoder_call(model, jnp.asarray(x))))
    return np.concatenate(feats, axis=1)[0]


def test_cli_survives_a_mixed_folder_and_loses_nothing(cli_run, mixed, capsys):
    argv, out = cli_run
    assert cli.main(argv) == 1  # some inputs failed
    stderr = capsys.readouterr().err
    result = np.load(out)
    good = sorted(str(p) for p in mixed["good"])
    bad = sorted(str(p) for p in mixed["bad"])
    assert list(result["paths"]) == good  # input (sorted folder) order
    assert sorted(result["failed"]) == bad
    assert len(result["errors"]) == len(bad) and all(e and "\n" not in e for e in result["errors"])
    for name in ("quality", "content"):
        assert result[name].shape == (len(good), FEAT) and result[name].dtype == np.float32
        assert np.isfinite(result[name]).all()
    for path in bad:
        assert f"skipped {path}:" in stderr
    assert "skipped 1 file(s) without an image extension" in stderr


def test_features_are_the_demo_computation(cli_run, models, mixed):
    argv, out = cli_run
    if not out.exists():
        assert cli.main(argv) == 1
    result = np.load(out)
    paths = list(result["paths"])
    quality, content = models
    for path in (mixed["good"][0], mixed["good"][1], mixed["good"][5]):  # two shapes, CMYK
        row = paths.index(str(path))
        expect_q = _direct_features(quality, path, (0, 0, 0), (1, 1, 1))
        expect_c = _direct_features(content, path, IMAGENET_MEAN, IMAGENET_STD)
        np.testing.assert_allclose(result["quality"][row], expect_q, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result["content"][row], expect_c, rtol=1e-4, atol=1e-5)


def test_batch_size_and_padding_do_not_change_features(models, mixed):
    paths = [str(p) for p in mixed["good"][:4]]
    one = FeatureExtractor(quality_model=models[0], batch_size=1).extract(paths, progress=False)
    many = FeatureExtractor(quality_model=models[0], batch_size=3).extract(paths, progress=False)
    assert one.paths == many.paths == paths
    np.testing.assert_allclose(one.quality, many.quality, rtol=1e-5, atol=1e-6)


def test_python_api_bfloat16_is_close_to_float32(checkpoints):
    paths = []
    for name in ("astronaut", "chelsea"):
        path = checkpoints[0].parent / f"{name}.png"
        photo(name, (80, 56)).save(path)
        paths.append(str(path))
    f32 = extract_features(paths, quality_ckpt=checkpoints[0], dtype="float32")
    bf16 = extract_features(paths, quality_ckpt=checkpoints[0], dtype="bfloat16")
    assert bf16.content is None and bf16.quality.dtype == np.float32
    cos = (f32.quality * bf16.quality).sum(1) / (
        np.linalg.norm(f32.quality, axis=1) * np.linalg.norm(bf16.quality, axis=1))
    assert (cos > 0.999).all()
    assert not np.array_equal(f32.quality, bf16.quality)  # it really ran in bfloat16
    with pytest.raises(ValueError, match="both"):
        f32.reiqa()


def test_all_local_devices_give_the_same_features(checkpoints, mixed, tmp_path):
    """Two virtual CPU devices split each batch; features match one device's."""
    paths = [str(p) for p in mixed["good"][:5]]
    out = tmp_path / "two.npz"
    script = (
        "import json, sys, jax; from reiqa_jax.extract import extract_features;"
        "assert len(jax.local_devices()) == 2, jax.local_devices();"
        f"f = extract_features(json.loads(sys.argv[1]), quality_ckpt={str(checkpoints[0])!r}, "
        "batch_size=3); f.save_npz(sys.argv[2])")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", script, json.dumps(paths), str(out)], env=env,
                   check=True, timeout=300)
    two = np.load(out)
    one = extract_features(paths, quality_ckpt=checkpoints[0], batch_size=3)
    assert list(two["paths"]) == one.paths
    np.testing.assert_allclose(two["quality"], one.quality, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", ["missing", "not_a_checkpoint"])
def test_unusable_checkpoint_is_a_one_line_error(make, tmp_path, mixed, capsys):
    ckpt = tmp_path / "ckpt"
    if make == "not_a_checkpoint":
        ckpt.mkdir()
        (ckpt / "weights.bin").write_bytes(b"\0" * 16)
    code = cli.main(["extract", "--quality-ckpt", str(ckpt), "-o", str(tmp_path / "o.npz"),
                     str(mixed["good"][0])])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("reiqa extract: error: quality checkpoint") and "\n" not in err
    assert not (tmp_path / "o.npz").exists()


def test_cli_needs_a_checkpoint(tmp_path, capsys):
    assert cli.main(["extract", "-o", str(tmp_path / "o.npz"), str(tmp_path)]) == 2
    assert "--quality-ckpt and/or --content-ckpt" in capsys.readouterr().err
