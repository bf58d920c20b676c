"""Feature extraction: demo-exact features, exact buckets, memory-bounded batches, bad inputs,
devices, the compilation cache, CLI."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bad_inputs import make_mixed_folder, photo
from reiqa_jax import cli
from reiqa_jax.checkpoint import build_model, save_model
from reiqa_jax.extract import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor, extract_features
from reiqa_jax.images import load_image
from reiqa_jax.scoring.features import load_features
from model_testing import random_arrays

ARCH = dict(depth=10, width=0.25, feat_dim=128)  # small and fast; ResNet-50 is in test_convert
FEAT = 2 * 128  # 512 * 0.25 per scale


@pytest.fixture(scope="module")
def models():
    """Random weights and non-trivial running statistics (eval-mode BN is not the identity)."""
    return build_model(ARCH, random_arrays(ARCH, 0)), build_model(ARCH, random_arrays(ARCH, 1))


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


def test_two_encoders_side_by_side_give_the_same_features_and_compile_once(models, mixed,
                                                                           caplog):
    """On CPU the encoders run as one program, one (virtual) device each; features as on one."""
    paths = [str(p) for p in mixed["good"][:5]]
    pair = dict(quality_model=models[0], content_model=models[1], batch_size=2)
    split = FeatureExtractor(**pair)  # "auto": side by side on CPU
    assert split.encoders_concurrent and split.devices == jax.local_devices()[:1]
    shared = FeatureExtractor(**pair, encoder_devices="shared")
    one = FeatureExtractor(**pair, devices=jax.local_devices()[:1])
    assert not shared.encoders_concurrent and not one.encoders_concurrent
    want = one.extract(paths, progress=False)
    jax.clear_caches()
    for extractor in (split, shared):
        with jax.log_compiles(), caplog.at_level(logging.WARNING):
            caplog.clear()
            got = extractor.extract(paths, progress=False)
        # XLA compiles each shape once, for both encoders (persistent cache or not)
        shapes = {step.shape for step in extractor.plan(paths, lambda *_: None)}
        compiled = [r.message for r in caplog.records
                    if r.message.startswith("Finished XLA compilation of")]
        assert len(compiled) == len(shapes), compiled
        assert got.paths == want.paths == paths
        for name in ("quality", "content"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-6,
                                       atol=1e-6)
    with pytest.raises(ValueError, match="encoder_devices must be one of"):
        FeatureExtractor(**pair, encoder_devices="both")


def test_large_steps_run_one_encoder_at_a_time(models, mixed, monkeypatch):
    """Above CONCURRENT_MAX_PIXELS no encoder program starts while another is running."""
    import reiqa_jax.extract as extract_module

    paths = [str(p) for p in mixed["good"][:4]]
    pair = dict(quality_model=models[0], content_model=models[1], batch_size=2, canvases=False)
    want = FeatureExtractor(**pair, devices=jax.local_devices()[:1]).extract(paths,
                                                                            progress=False)
    encode, outputs, overlaps = extract_module._encode, [], []

    def recording(*args):
        overlaps.append(sum(not out.is_ready() for out in outputs))
        outputs.append(encode(*args))
        return outputs[-1]

    monkeypatch.setattr(extract_module, "_encode", recording)
    monkeypatch.setattr(extract_module, "CONCURRENT_MAX_PIXELS", 0)  # every step is large
    got = FeatureExtractor(**pair).extract(paths, progress=False)
    assert len(outputs) >= 8 and overlaps == [0] * len(outputs)  # 2 encoders x >= 4 steps
    # (want's steps compiled without YNNPACK, got's large ones with it: float32 rounding apart)
    np.testing.assert_allclose(got.content, want.content, rtol=0,
                               atol=1e-5 * np.abs(want.content).max())


def test_commands_give_the_cpu_two_devices_unless_the_user_chose(tmp_path):
    script = ("import jax; from reiqa_jax.cpu_devices import use_cpu_devices;"
              "changed = use_cpu_devices(); print(changed, len(jax.devices('cpu')))")
    env = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
    env["JAX_PLATFORMS"] = "cpu"

    def run(**extra):
        return subprocess.run([sys.executable, "-c", script], env=dict(env, **extra), check=True,
                               capture_output=True, text=True, timeout=120).stdout.split()

    assert run() == ["True", "2"]
    assert run(JAX_NUM_CPU_DEVICES="1") == ["False", "1"]
    assert run(XLA_FLAGS="--xla_force_host_platform_device_count=3") == ["False", "3"]


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


def _odd_photos(folder: Path) -> list[str]:
    """Real photos cut to odd sizes; the first two share a bucket, the last is tiny."""
    from skimage import data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    cuts = [("astronaut", 97, 131), ("coffee", 101, 141), ("astronaut", 3, 5)]
    paths = []
    for i, (name, h, w) in enumerate(cuts):
        path = folder / f"{i}_{name}_{w}x{h}.png"
        Image.fromarray(getattr(data, name)()[50:50 + h, 80:80 + w]).save(path)
        paths.append(str(path))
    return paths


def test_bucketed_features_equal_unbucketed_ones_on_odd_sized_photos(models, tmp_path):
    paths = _odd_photos(tmp_path)
    pair = dict(quality_model=models[0], content_model=models[1])
    canvas = FeatureExtractor(**pair)  # the default: sparse buckets share canvases
    bucketed = FeatureExtractor(**pair, canvases=False)
    exact = FeatureExtractor(**pair, buckets_per_octave=0)
    never = lambda i, m: pytest.fail(m)  # noqa: E731
    steps = canvas.plan(paths, report=never)
    assert len(steps) == 1 and len(steps[0].slots[0]) == 6  # 3 images x 2 scales, one program
    steps = bucketed.plan(paths, report=never)
    assert [0, 1] in [step.indices for step in steps]  # 131x97 and 141x101 share a batch
    assert len({step.shape for step in steps}) < len({step.shape for step in
                                                      exact.plan(paths, report=never)})
    want = exact.extract(paths, progress=False)
    assert want.paths == paths and not want.failed
    for extractor in (canvas, bucketed):
        got = extractor.extract(paths, progress=False)
        assert got.paths == paths and not got.failed
        for name in ("quality", "content"):
            scale = np.abs(getattr(want, name)).max()
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=0,
                                       atol=1e-5 * scale)


def test_low_memory_compilation_gives_the_same_features(models, tmp_path, monkeypatch):
    """On CPU, steps compile without YNNPACK unless low_memory: float32 rounding apart, the same.

    An XLA that does not know those options falls back to its default for the rest of the run.
    """
    import reiqa_jax.extract as extract_module

    pair = dict(quality_model=models[0], content_model=models[1])
    paths = _odd_photos(tmp_path)
    want = FeatureExtractor(**pair, low_memory=True).extract(paths, progress=False)
    got = [FeatureExtractor(**pair).extract(paths, progress=False)]
    unknown = dict(compiler_options={"xla_cpu_no_such_option_in_any_xla": ""})
    broken = jax.jit(extract_module._pair_forward, static_argnums=(0, 1), **unknown)
    calls = []
    monkeypatch.setattr(extract_module, "_encode_pair_no_ynnpack",
                        lambda *args: calls.append(1) or broken(*args))
    got.append(FeatureExtractor(**pair).extract(paths, progress=False))
    assert calls == [1]  # tried once, then the default for the rest of the run
    for features in got:
        assert features.paths == want.paths == paths and not features.failed
        for name in ("quality", "content"):
            np.testing.assert_allclose(getattr(features, name), getattr(want, name), rtol=0,
                                       atol=1e-5 * np.abs(getattr(want, name)).max())


def test_memory_budget_large_image_alone_too_large_reported_run_goes_on(models, tmp_path):
    paths = []
    for name, size in (("astronaut", (40, 40)), ("coffee", (90, 90)), ("chelsea", (40, 38)),
                       ("rocket", (130, 130))):
        paths.append(str(tmp_path / f"{len(paths)}_{name}.png"))
        photo(name, size).save(paths[-1])
    budget = 10_000  # padded pixels per step: 4 of 40x40, one 96x96, no 130x130
    one = jax.local_devices()[:1]  # the budget is per device: one device, one step
    extractor = FeatureExtractor(quality_model=models[0], batch_pixels=budget, batch_size=8,
                                 canvases=False, devices=one)
    errors = []
    steps = extractor.plan(paths, report=lambda i, m: errors.append((i, m)))
    assert all(len(s.slots) * s.shape[0] * s.shape[1] <= budget for s in steps)
    full_scale = [step.indices for step in steps[::2]]  # each batch: full, then half scale
    assert sorted(full_scale) == [[0, 2], [1]]  # the 90x90 one alone
    assert [i for i, _ in errors] == [3]
    # With canvases (the default) as well: each canvas within the budget.
    packed = FeatureExtractor(quality_model=models[0], batch_pixels=budget, batch_size=8,
                              devices=one)
    assert all(s.shape[0] * s.shape[1] <= budget for s in packed.plan(paths, lambda i, m: None))
    features = extractor.extract(paths, progress=False)
    assert features.failed == [paths[3]]
    message = features.errors[0]
    assert "\n" not in message and "130x130" in message and "limit of 10000 pixels" in message
    assert features.paths == [paths[i] for i in (0, 1, 2)]
    big = _direct_features(models[0], paths[1], (0, 0, 0), (1, 1, 1))
    np.testing.assert_allclose(features.quality[1], big, rtol=1e-4, atol=1e-5)


_COMPILE_TWICE = """
import json, sys, jax
from jax import monitoring
from reiqa_jax.extract import extract_features
events = []
monitoring.register_event_listener(lambda name, **kw: events.append(name))
f = extract_features(json.loads(sys.argv[1]), quality_ckpt=sys.argv[2], batch_size=2)
print(json.dumps({"requests": events.count("/jax/compilation_cache/compile_requests_use_cache"),
                  "hits": events.count("/jax/compilation_cache/cache_hits"),
                  "paths": len(f.paths)}))
"""


def test_a_second_run_compiles_nothing(checkpoints, tmp_path):
    paths = _odd_photos(tmp_path / "photos")
    env = dict(os.environ, REIQA_JAX_CACHE_DIR=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _COMPILE_TWICE, json.dumps(paths),
                              str(checkpoints[0])], env=env, capture_output=True, text=True,
                             timeout=300, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0]["paths"] == runs[1]["paths"] == 3
    assert runs[0]["requests"] >= 1 and runs[0]["hits"] == 0  # one canvas program
    assert runs[1]["hits"] == runs[1]["requests"] == runs[0]["requests"]
    assert any((tmp_path / "cache").iterdir())


def test_compile_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    from reiqa_jax.compile_cache import ENV, default_cache_dir

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "reiqa-jax" / "jax"
    monkeypatch.setenv(ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(ENV, "")
    assert default_cache_dir() is None  # turned off


def test_python_api_records_the_checkpoints(checkpoints, mixed):
    f = extract_features([str(mixed["good"][0])], quality_ckpt=checkpoints[0])
    assert f.quality_ckpt == os.path.abspath(checkpoints[0]) and f.content_ckpt == ""
    assert f.entries == f.paths and f.failed_entries == [] and f.columns == {}


def test_features_files_from_before_entries_and_columns_still_load(tmp_path):
    old = tmp_path / "old.npz"  # what reiqa extract wrote before: no entries, columns, ckpts
    np.savez(old, paths=np.asarray(["/a.jpg", "/b.jpg"]), quality=np.ones((2, 4), np.float32),
             failed=np.asarray(["/c.jpg"]), errors=np.asarray(["cannot decode"]))
    f = load_features(old)
    assert f.paths == f.entries == ["/a.jpg", "/b.jpg"] and f.content is None
    assert f.failed == f.failed_entries == ["/c.jpg"] and f.errors == ["cannot decode"]
    assert f.columns == {} and f.quality_ckpt == f.content_ckpt == ""
    f.columns = {"MOS": ["1.5", "2"]}
    written = f.save_npz(tmp_path / "new")  # numpy's rule: .npz is added
    assert written == tmp_path / "new.npz"
    again = load_features(written)
    assert again.columns == {"MOS": ["1.5", "2"]} and again.entries == f.entries
    np.testing.assert_array_equal(again.quality, f.quality)
    assert written.read_bytes() == f.save_npz(tmp_path / "same.npz").read_bytes()
