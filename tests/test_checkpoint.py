"""Our checkpoint format: round trips, training state, clear errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image
from skimage import data as skdata

from reiqa_jax import torch_layout as tl
from reiqa_jax.checkpoint import (CheckpointError, WrongBranch, build_model, load_model,
                                  load_training_state, model_arrays, read_header, save_model)
from model_testing import random_arrays

ARCH = dict(depth=18, width=0.125, feat_dim=16)


@pytest.fixture(scope="module")
def tiny():
    model = build_model(ARCH, random_arrays(ARCH, seed=1))
    ema = build_model(ARCH, random_arrays(ARCH, seed=2))
    img = Image.fromarray(skdata.astronaut()).resize((50, 38), Image.BICUBIC)
    x = (np.asarray(img, np.float32) / 255.0)[None]
    return model, ema, x


_forward = nnx.jit(lambda m, x: (m.encoder(x), m(x)))


def _assert_same_model(a, b):
    aa, bb = model_arrays(a), model_arrays(b)
    for coll in aa:
        assert aa[coll].keys() == bb[coll].keys()
        for k in aa[coll]:
            np.testing.assert_array_equal(aa[coll][k], bb[coll][k])


def test_round_trip_with_training_state(tiny, tmp_path):
    model, ema, x = tiny
    params = nnx.state(model, nnx.Param)
    momentum = jax.tree.map(lambda p: 0.5 * p + 1.0, params)  # an nnx.State
    queue = np.random.default_rng(0).standard_normal((24, 16)).astype(np.float32)
    d = save_model(tmp_path / "ck", model, meta={"source": "test"}, ema_model=ema,
                   queue=queue, opt_momentum=momentum, epoch=5)
    header = json.load(open(os.path.join(d, "reiqa.json")))
    assert header["arch"] == ARCH and header["epoch"] == 5 and header["meta"] == {"source": "test"}
    loaded = load_model(d)
    _assert_same_model(model, loaded)
    f0, h0 = _forward(model, x)
    f1, h1 = _forward(loaded, x)
    np.testing.assert_array_equal(np.asarray(f0), np.asarray(f1))
    np.testing.assert_array_equal(np.asarray(h0), np.asarray(h1))

    state = load_training_state(d)
    assert set(state) == {"ema_model", "queue", "opt_momentum", "epoch"}
    _assert_same_model(ema, state["ema_model"])
    np.testing.assert_array_equal(np.asarray(state["queue"]), queue)
    assert state["epoch"] == 5
    # opt_momentum has the params' exact tree: it drops into nnx.state(model, Param).
    want = nnx.to_pure_dict(momentum)
    assert jax.tree.structure(state["opt_momentum"]) == jax.tree.structure(want)
    jax.tree.map(np.testing.assert_array_equal, state["opt_momentum"], want)
    target = nnx.state(loaded, nnx.Param)
    nnx.replace_by_pure_dict(target, state["opt_momentum"])


def test_model_only_and_bfloat16(tiny, tmp_path):
    model, _, x = tiny
    d = save_model(tmp_path / "m", model)
    assert load_training_state(d) == {}
    b16 = load_model(d, dtype=jnp.bfloat16)
    assert b16.encoder.conv1.kernel[...].dtype == jnp.float32
    f, h = _forward(b16, x)
    assert f.dtype == jnp.float32 and np.all(np.isfinite(f))
    ref, _ = _forward(model, x)
    assert np.abs(np.asarray(f) - np.asarray(ref)).max() / np.abs(np.asarray(ref)).max() < 5e-2


def test_no_pickle_on_disk(tiny, tmp_path):
    model, ema, _ = tiny
    d = save_model(tmp_path / "p", model, ema_model=ema, queue=np.zeros((4, 16)), epoch=1)
    for root, _, files in os.walk(d):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                head = fh.read(2)
            # pickle protocol 2+ streams start with 0x80 <protocol>
            assert not (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5), f


def _one_line_error(fn, *needles):
    with pytest.raises(CheckpointError) as ei:
        fn()
    msg = str(ei.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, (n, msg)


def test_load_errors(tiny, tmp_path):
    model, _, _ = tiny
    _one_line_error(lambda: load_model(tmp_path / "absent"), "no checkpoint directory")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "weights.bin").write_bytes(b"\0" * 8)
    _one_line_error(lambda: load_model(tmp_path / "other"), "not a reiqa-jax checkpoint")
    d = save_model(tmp_path / "ok", model)
    header = json.load(open(os.path.join(d, "reiqa.json")))
    header["arch"]["width"] = 0.25  # arrays are width 0.125
    json.dump(header, open(os.path.join(d, "reiqa.json"), "w"))
    _one_line_error(lambda: load_model(d), "do not fit", "encoder/conv1/kernel")
    with open(os.path.join(d, "reiqa.json"), "w") as f:
        f.write("{not json")
    _one_line_error(lambda: load_model(d), "unreadable")


def test_leftover_reads_of_a_damaged_checkpoint_are_not_logged_but_others_are(tiny, tmp_path,
                                                                               caplog):
    """The reads orbax abandons when one array fails are not printed after the one-line error.

    asyncio logs an abandoned task when it is collected, which may be at any
    later moment; a task failing the way tensorstore's reads fail stands in
    for one here, so the check does not depend on that timing.
    """
    import asyncio
    import gc

    model, _, _ = tiny
    damaged = save_model(tmp_path / "damaged", model)
    for data in (tmp_path / "damaged" / "state").rglob("ocdbt.process_0/d/*"):
        data.write_bytes(data.read_bytes()[:10])
    _one_line_error(lambda: load_model(damaged), "cannot read")

    def abandon(message):
        async def read():
            raise ValueError(message)

        loop = asyncio.new_event_loop()
        task = loop.create_task(read())
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        del task
        gc.collect()

    state = os.path.join(os.path.abspath(damaged), "state")
    with caplog.at_level("ERROR", logger="asyncio"):
        abandon(f'OUT_OF_RANGE: Error reading "a" at local file "{state}/model/"')
        assert "never retrieved" not in caplog.text
        abandon("an unrelated failure")
    assert "never retrieved" in caplog.text and "an unrelated failure" in caplog.text


def test_save_errors_write_nothing(tiny, tmp_path):
    model, _, _ = tiny
    other = build_model(dict(ARCH, feat_dim=8), random_arrays(dict(ARCH, feat_dim=8), 3))
    cases = [
        (dict(queue=np.zeros((4, 15))), "queue shape"),
        (dict(ema_model=other), "ema_model arch"),
        (dict(opt_momentum={"encoder": {}}), "opt_momentum"),
        (dict(meta={"x": object()}), "JSON"),
    ]
    for i, (kw, needle) in enumerate(cases):
        _one_line_error(lambda: save_model(tmp_path / f"bad{i}", model, **kw), needle)
        assert not (tmp_path / f"bad{i}").exists()
    assert sorted(os.listdir(tmp_path)) == []
    d = save_model(tmp_path / "ck", model, epoch=1)
    _one_line_error(lambda: save_model(d, model), "not empty")
    save_model(d, model, epoch=2, overwrite=True)
    assert load_training_state(d) == {"epoch": 2}
    assert sorted(os.listdir(tmp_path)) == ["ck"]  # no temporaries left


def test_models_and_checkpoint_do_not_import_torch():
    code = ("import sys, reiqa_jax.models, reiqa_jax.checkpoint, reiqa_jax.convert, "
            "reiqa_jax.torch_layout; assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_layout_names_every_array_once():
    """The torch<->ours table covers each of our arrays exactly once (depth 50)."""
    from reiqa_jax.checkpoint import expected_shapes
    arch = dict(depth=50, width=1, feat_dim=128)
    shapes = expected_shapes(arch)
    entries = [e for e in tl.model_layout(50) if e.kind != tl.COUNTER]
    for coll in shapes:
        paths = [e.path for e in entries if e.collection == coll]
        assert len(paths) == len(set(paths)) and set(paths) == set(shapes[coll])
    # 53 convs, 53 BNs (weight, bias, mean, var, counter), 2 linears (w, b)
    assert len(tl.model_layout(50)) == 53 + 53 * 5 + 4


def test_nan_or_inf_weights_are_refused_on_load(tiny, tmp_path):
    model, _, _ = tiny
    arrays = {coll: {k: np.array(v) for k, v in tree.items()}
              for coll, tree in model_arrays(model).items()}
    arrays["params"]["encoder/conv1/kernel"][0, 0, 0, 0] = np.nan
    arrays["batch_stats"]["encoder/bn1/var"][1] = np.inf
    _one_line_error(lambda: build_model(ARCH, arrays), "NaN or Inf", "encoder/conv1/kernel")
    kernel = model.encoder.conv1.kernel  # a diverged model can still be saved...
    saved = kernel.get_value()
    kernel.set_value(saved.at[0, 0, 0, 0].set(jnp.inf))
    try:
        d = save_model(tmp_path / "inf", model)
    finally:
        kernel.set_value(saved)
    _one_line_error(lambda: load_model(d), "NaN or Inf", "encoder/conv1/kernel")  # ...not used


@pytest.mark.parametrize("change, needle", [
    ({"arch": {"depth": 77, "width": 0.125, "feat_dim": 16}}, "depth 77"),
    ({"arch": {"depth": 18, "width": "wide", "feat_dim": 16}}, "width 'wide'"),
    ({"arch": {"depth": 18, "width": 0.001, "feat_dim": 16}}, "width 0.001"),
    ({"arch": {"depth": 18, "width": 0.125, "feat_dim": -1}}, "feat_dim -1"),
    ({"arch": {"depth": True, "width": 0.125, "feat_dim": 16}}, "depth True"),
    ({"arch": [1]}, "missing architecture"),
    ({"items": ["model", 3]}, "bad item list"),
    ({"items": "model"}, "bad item list"),
    ({"epoch": "five"}, "epoch 'five'"),
    ({"meta": [1, 2]}, "meta is not a JSON object"),
    ({"version": 99}, "unsupported version"),
    (b"\xff\xfe\x00 not utf-8", "unreadable"),
])
def test_tampered_header_is_a_one_line_error(tiny, tmp_path, change, needle):
    d = save_model(tmp_path / "ck", tiny[0])
    if isinstance(change, bytes):
        (tmp_path / "ck" / "reiqa.json").write_bytes(change)
    else:
        header = json.load(open(os.path.join(d, "reiqa.json")))
        header.update(change)
        json.dump(header, open(os.path.join(d, "reiqa.json"), "w"))
    _one_line_error(lambda: load_model(d), needle)


def test_a_checkpoint_of_the_other_branch_is_refused(tiny, tmp_path):
    """reiqa train records which encoder it trained; asking for the other one is an error."""
    d = save_model(tmp_path / "trained", tiny[0], meta={"source": "reiqa train",
                                                        "branch": "quality"})
    assert load_model(d, branch="quality").arch == ARCH
    with pytest.raises(WrongBranch) as info:
        load_model(d, branch="content")
    assert info.value.found == "quality" and str(info.value) == (
        f"{d} is a quality encoder (its reiqa.json says branch: quality), not a content one")
    converted = save_model(tmp_path / "converted", tiny[0], meta={"source": "x.pth"})
    assert read_header(converted, branch="content")["arch"] == ARCH  # says nothing: taken


def test_checkpoint_folders_follow_the_umask(tiny, tmp_path):
    """Folders and files as any other program makes them (0755 / 0644 under umask 022)."""
    previous = os.umask(0o022)
    try:
        d = save_model(tmp_path / "ck", tiny[0], queue=np.zeros((4, 16)), epoch=1)
    finally:
        os.umask(previous)
    modes = {os.stat(root).st_mode & 0o777 for root, _, _ in os.walk(d)}
    files = {os.stat(os.path.join(root, f)).st_mode & 0o777
             for root, _, names in os.walk(d) for f in names}
    assert modes == {0o755} and files == {0o644}
