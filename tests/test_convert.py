"""PyTorch <-> reiqa-jax conversion: parity on real photos, round trip, errors."""
from __future__ import annotations

import os
import signal
import threading
import warnings

import numpy as np
import pytest
import torch
from flax import nnx
from PIL import Image
from skimage import data as skdata

from reiqa_jax import torch_layout as tl
from reiqa_jax.checkpoint import load_model, load_training_state, model_arrays
import reiqa_jax.convert as convert_module
from reiqa_jax import cli
from reiqa_jax.commands.convert import main
from reiqa_jax.convert import ConversionError, reiqa_to_torch, torch_to_reiqa
from reiqa_jax.reference.torch_model import ReIQANet, randomize, training_checkpoint

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
TOL = 1e-4  # max|delta| / max|ref|, float32


def _photo(img: np.ndarray, h: int, w: int) -> Image.Image:
    return Image.fromarray(img).convert("RGB").resize((w, h), Image.BICUBIC)


def _scales(pil: Image.Image) -> list[np.ndarray]:
    """Full and official half scale (PIL default resize), as (H,W,3) in [0,1]."""
    w, h = pil.size
    half = pil.resize((w // 2, h // 2))
    return [np.asarray(p, np.float32) / 255.0 for p in (pil, half)]


# Odd and even sizes; small keeps CPU time down.
PHOTOS = [("astronaut", skdata.astronaut(), 97, 131), ("coffee", skdata.coffee(), 160, 224)]


@pytest.fixture(scope="module")
def inputs():
    """[(name, (2,H,W,3) float32: row 0 quality [0,1], row 1 content ImageNet-normed)]."""
    out = []
    for name, img, h, w in PHOTOS:
        for s, x in zip(("full", "half"), _scales(_photo(img, h, w))):
            out.append((f"{name}-{s}-{x.shape[0]}x{x.shape[1]}",
                        np.stack([x, (x - MEAN) / STD]).astype(np.float32)))
    return out


def _torch_forward(net, x_nhwc):
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
        f = net.encoder(t)
        return f.numpy(), net.head(f).numpy()


_jit_forward = nnx.jit(lambda m, x: (m.encoder(x), m(x)))


def _rel(a, ref):
    return float(np.max(np.abs(np.asarray(a) - ref)) / np.max(np.abs(ref)))


def _released_layout(d, width, seed, queue_size):
    """A random Re-IQA of ``width`` saved in the released training layout, then converted."""
    net = randomize(ReIQANet(50, width), seed=seed).eval()
    ema = randomize(ReIQANet(50, width), seed=seed + 1).eval()
    ckpt = training_checkpoint(net, ema, queue_size=queue_size, epoch=7, seed=seed + 2)
    src = d / "released.pth"
    torch.save(ckpt, src)
    out = torch_to_reiqa(src, d / "ours")
    return dict(dir=d, src=src, ckpt=ckpt, net=net, ema=ema, out=out,
                model=load_model(out))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Random ResNet-50 Re-IQA in the released training layout, converted."""
    return _released_layout(tmp_path_factory.mktemp("released"), 1, seed=1, queue_size=96)


@pytest.fixture(scope="module")
def small_released(tmp_path_factory):
    """The same training layout for a width-1/4 ResNet-50 (round trips are size-blind)."""
    return _released_layout(tmp_path_factory.mktemp("small"), 0.25, seed=11, queue_size=32)


def test_parity_encoder_and_head_on_photos(released, inputs):
    """ResNet-50 features (quality + content input, both scales) and 128-d head."""
    model, net = released["model"], released["net"]
    for name, x in inputs:
        ref_f, ref_h = _torch_forward(net, x)
        f, h = _jit_forward(model, x)
        assert f.dtype == np.float32 and f.shape == (2, 2048)
        assert h.shape == (2, 128)
        # BN is far from identity: features differ between the two inputs.
        assert _rel(ref_f[0], ref_f[1]) > 1e-2
        for row, kind in ((0, "quality"), (1, "content")):
            assert _rel(f[row], ref_f[row]) <= TOL, (name, kind, "encoder")
            assert _rel(h[row], ref_h[row]) <= TOL, (name, kind, "head")
        np.testing.assert_allclose(np.linalg.norm(np.asarray(h), axis=1), 1.0, rtol=1e-5)


def test_training_state_is_brought_along(released):
    ckpt, out = released["ckpt"], released["out"]
    state = load_training_state(out)
    assert state["epoch"] == 7
    np.testing.assert_array_equal(np.asarray(state["queue"]), ckpt["contrast"]["memory"].numpy())
    # Momentum buffer i belongs to torch parameter i: both must land on the same path.
    ours = model_arrays(released["model"])["params"]
    mom = tl.flatten(state["opt_momentum"])
    entries = [e for e in tl.model_layout(50) if e.is_torch_parameter]
    named = list(released["net"].named_parameters())
    assert len(named) == len(entries) == len(mom)
    for i, ((tname, p), e) in enumerate(zip(named, entries)):
        assert tname == e.torch_key
        np.testing.assert_array_equal(ours[e.path], tl.ours_from_torch(e.kind, p.detach().numpy()))
        buf = ckpt["optimizer"]["state"][i]["mu"].numpy()
        np.testing.assert_array_equal(np.asarray(mom[e.path]), tl.ours_from_torch(e.kind, buf))
    # The momentum model is the EMA net, bit for bit.
    ema_ours = model_arrays(state["ema_model"])
    ema_sd = released["ema"].state_dict()
    for e in tl.model_layout(50):
        if e.kind != tl.COUNTER:
            np.testing.assert_array_equal(
                ema_ours[e.collection][e.path], tl.ours_from_torch(e.kind, ema_sd[e.torch_key].numpy()))


def test_ema_flag_converts_momentum_model(small_released, inputs):
    released = small_released
    out = torch_to_reiqa(released["src"], released["dir"] / "ema_only", ema=True)
    model = load_model(out)
    assert load_training_state(out) == {"epoch": 7}  # the EMA alone, no training state
    name, x = inputs[0]
    ref_f, ref_h = _torch_forward(released["ema"], x)
    f, h = _jit_forward(model, x)
    assert _rel(f, ref_f) <= TOL and _rel(h, ref_h) <= TOL


def test_to_torch_and_back_is_exact(small_released, inputs):
    released = small_released
    d, ckpt = released["dir"], released["ckpt"]
    back = d / "back.pth"
    assert main([str(released["out"]), str(back), "--to-torch"]) == 0
    exported = torch.load(back, map_location="cpu", weights_only=True)
    # Loads strictly into the official wrapper, DataParallel(model).
    net = torch.nn.DataParallel(ReIQANet(50, 0.25))
    net.load_state_dict(exported["model"], strict=True)
    ReIQANet(50, 0.25).load_state_dict(exported["model_ema"], strict=True)
    for k, v in ckpt["model"].items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(exported["model"][k], v), k
    assert torch.equal(exported["contrast"]["memory"], ckpt["contrast"]["memory"])
    assert exported["epoch"] == 7
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt.load_state_dict(exported["optimizer"])  # group sizes must match
    for i, s in ckpt["optimizer"]["state"].items():
        assert torch.equal(exported["optimizer"]["state"][i]["mu"], s["mu"])
    # ... and reproduces the features of the original torch model.
    net.eval()
    name, x = inputs[0]
    np.testing.assert_array_equal(_torch_forward(net.module, x)[0],
                                  _torch_forward(released["net"], x)[0])
    # Back to ours: every array bitwise equal.
    again = torch_to_reiqa(back, d / "again")
    a, b = model_arrays(released["model"]), model_arrays(load_model(again))
    for coll in a:
        assert a[coll].keys() == b[coll].keys()
        for k in a[coll]:
            np.testing.assert_array_equal(a[coll][k], b[coll][k])
    s1, s2 = load_training_state(released["out"]), load_training_state(again)
    assert s1.keys() == s2.keys()
    np.testing.assert_array_equal(s1["queue"], s2["queue"])
    for (p1, v1), (p2, v2) in zip(tl.flatten(s1["opt_momentum"]).items(),
                                  tl.flatten(s2["opt_momentum"]).items()):
        assert p1 == p2
        np.testing.assert_array_equal(v1, v2)


# ----------------------------------------------------------------------------
# other source layouts and errors: a tiny ResNet-18 keeps these fast

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    net = randomize(ReIQANet(18, 0.125, 16), seed=4).eval()
    x = np.stack(_scales(_photo(skdata.chelsea(), 45, 61))[:1])
    return dict(dir=d, net=net, sd=net.state_dict(), x=x)


def _save(d, name, obj):
    p = d / name
    torch.save(obj, p)
    return p


@pytest.mark.parametrize("prefix", ["", "module."])
def test_bare_state_dict(tiny, prefix):
    src = _save(tiny["dir"], f"bare{prefix}.pth", {prefix + k: v for k, v in tiny["sd"].items()})
    model = load_model(torch_to_reiqa(src, tiny["dir"] / f"bare{prefix}"))
    assert model.arch == dict(depth=18, width=0.125, feat_dim=16)
    ref_f, ref_h = _torch_forward(tiny["net"], tiny["x"])
    assert _rel(model.encoder(tiny["x"]), ref_f) <= TOL
    assert _rel(model(tiny["x"]), ref_h) <= TOL
    assert load_training_state(tiny["dir"] / f"bare{prefix}") == {}


def test_torchvision_state_dict(tiny):
    sd = {k[len("encoder."):]: v for k, v in tiny["sd"].items() if k.startswith("encoder.")}
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(1000, 64), torch.zeros(1000)
    out = torch_to_reiqa(_save(tiny["dir"], "tv.pth", sd), tiny["dir"] / "tv")
    model = load_model(out)
    assert model.arch == dict(depth=18, width=0.125, feat_dim=128)
    ref_f, _ = _torch_forward(tiny["net"], tiny["x"])
    assert _rel(model.encoder(tiny["x"]), ref_f) <= TOL
    assert model(tiny["x"]).shape == (1, 128)
    import json
    meta = json.load(open(os.path.join(out, "reiqa.json")))["meta"]
    assert meta["head"] == "random-init" and meta["dropped_keys"] == ["fc.bias", "fc.weight"]


def test_sgd_momentum_buffers(tiny):
    ckpt = training_checkpoint(tiny["net"], tiny["net"], queue_size=8, epoch=1, seed=5,
                               buffer_name="momentum_buffer")
    del ckpt["optimizer"]["state"][3]  # a parameter without buffer -> zeros
    out = torch_to_reiqa(_save(tiny["dir"], "sgd.pth", ckpt), tiny["dir"] / "sgd")
    mom = tl.flatten(load_training_state(out)["opt_momentum"])
    paths = tl.param_paths_in_torch_order(18)
    assert not np.any(np.asarray(mom[paths[3]]))
    e0 = tl.model_layout(18)[0]
    np.testing.assert_array_equal(
        mom[paths[0]], tl.ours_from_torch(e0.kind, ckpt["optimizer"]["state"][0]["momentum_buffer"].numpy()))


def _expect_error(tiny, name, obj, *needles, capsys=None):
    src = _save(tiny["dir"], f"{name}.pth", obj)
    out = tiny["dir"] / f"{name}-out"
    with pytest.raises(ConversionError) as ei:
        torch_to_reiqa(src, out)
    msg = str(ei.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, (n, msg)
    assert not out.exists(), "nothing may be written on error"
    assert not any(p.name.startswith(out.name) for p in tiny["dir"].iterdir())
    return src, out


def test_missing_key(tiny):
    sd = {f"module.{k}": v for k, v in tiny["sd"].items()}
    del sd["module.encoder.layer2.1.bn2.running_var"]
    _expect_error(tiny, "missing", {"model": sd, "epoch": 1}, "missing",
                  "encoder.layer2.1.bn2.running_var")


def test_unexpected_key(tiny):
    sd = dict(tiny["sd"], **{"encoder.layer5.weight": torch.zeros(3)})
    _expect_error(tiny, "unexpected", sd, "unexpected", "encoder.layer5.weight")


def test_wrong_shape(tiny):
    sd = dict(tiny["sd"])
    sd["head.0.bias"] = torch.zeros(7)
    _expect_error(tiny, "shape", sd, "head.0.bias", "(7,)")


class _NotWeights:
    def __init__(self):
        self.weights = torch.zeros(2)


def test_refuses_pickle_that_runs_code(tiny, capsys):
    src, out = _expect_error(tiny, "code", {"model": _NotWeights()}, "arbitrary code")
    assert main([str(src), str(out)], prog="reiqa convert") == 2
    err = capsys.readouterr().err
    assert err.startswith("reiqa convert: error:") and err.count("\n") == 1
    assert "arbitrary code" in err
    assert not out.exists()


def test_cli_errors_exit_2(tiny, capsys):
    assert main([str(tiny["dir"] / "nope.pth"), str(tiny["dir"] / "x")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main([str(tiny["dir"]), str(tiny["dir"] / "y.pth"), "--to-torch"]) == 2
    assert "not a reiqa-jax checkpoint" in capsys.readouterr().err
    # existing outputs are never overwritten
    src = _save(tiny["dir"], "cli.pth", tiny["sd"])
    ours = torch_to_reiqa(src, tiny["dir"] / "cli")
    assert main([str(src), ours]) == 2
    assert "already exists and is not an empty directory; choose a new name" in \
        capsys.readouterr().err
    with pytest.raises(ConversionError, match="already exists; choose a new name"):
        reiqa_to_torch(ours, src)


# ----------------------------------------------------------------------------
# the rough edges users met: each is one line on stderr, exit status 2, nothing written

def _one_line(capsys, code):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("reiqa convert: error: ")
    return lines[0]


def test_not_a_checkpoint_and_wrong_direction_are_explained(tiny, capsys):
    d = tiny["dir"]
    (d / "random.pth").write_bytes(np.random.default_rng(0).bytes(1000))
    (d / "text.pth").write_text("hello\n")
    for name in ("random.pth", "text.pth"):
        line = _one_line(capsys, main([str(d / name), str(d / "o1")], prog="reiqa convert"))
        assert "is not a PyTorch checkpoint" in line and "arbitrary code" not in line
    ours = torch_to_reiqa(_save(d, "dir.pth", tiny["sd"]), d / "ours_dir")
    line = _one_line(capsys, main([ours, str(d / "o2")], prog="reiqa convert"))
    assert "reiqa-jax checkpoint folder already" in line and "--to-torch" in line
    line = _one_line(capsys, main([str(d / "dir.pth"), str(d / "o3.pth"), "--to-torch"],
                                  prog="reiqa convert"))
    assert "drop --to-torch" in line
    assert not any((d / n).exists() for n in ("o1", "o2", "o3.pth"))


def test_unwritable_output_folder_is_refused_before_reading(tiny, capsys, tmp_path):
    src = _save(tmp_path, "ok.pth", tiny["sd"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_line(capsys, main([str(src), str(blocker / "out")], prog="reiqa convert"))
    assert "cannot write into" in line and str(blocker) in line
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        line = _one_line(capsys, main([str(src), str(locked / "out")], prog="reiqa convert"))
        assert "cannot write into" in line
        assert list(locked.iterdir()) == []


def test_nan_weights_are_refused(tiny, capsys):
    sd = dict(tiny["sd"])
    sd["encoder.layer1.0.bn1.running_var"] = sd["encoder.layer1.0.bn1.running_var"].clone()
    sd["encoder.layer1.0.bn1.running_var"][0] = float("inf")
    src = _save(tiny["dir"], "inf.pth", sd)
    line = _one_line(capsys, main([str(src), str(tiny["dir"] / "inf")], prog="reiqa convert"))
    assert "NaN or Inf" in line and "encoder/layer1/0/bn1/var" in line
    assert not (tiny["dir"] / "inf").exists()


def test_torch_warnings_do_not_reach_the_user(tiny, tmp_path, capsys, monkeypatch):
    src = _save(tmp_path, "warn.pth", tiny["sd"])
    real = torch.load

    def noisy(*args, **kwargs):
        warnings.warn("TypedStorage is deprecated", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", noisy)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert cli.main(["convert", str(src), str(tmp_path / "out")]) == 0
    assert [str(w.message) for w in shown] == []
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("wrote ")


class _Stop(Exception):
    pass


def test_check_hook_stops_either_direction_with_nothing_written(tiny, tmp_path):
    """``check`` runs between the steps; what it raises stops the conversion there."""
    src = _save(tmp_path, "sd.pth", tiny["sd"])
    ours = torch_to_reiqa(src, tmp_path / "ours")
    for convert, source, out in ((torch_to_reiqa, src, tmp_path / "out"),
                                 (reiqa_to_torch, ours, tmp_path / "out.pth")):
        for stop_at in (1, 2) if convert is torch_to_reiqa else (1,):
            calls = []

            def check():
                calls.append(1)
                if len(calls) == stop_at:
                    raise _Stop

            with pytest.raises(_Stop):
                convert(source, out, check=check)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["ours", "sd.pth"]


def _signal_after(monkeypatch, name, sig):
    """Makes ``reiqa_jax.convert.NAME`` send this process ``sig`` once it has run."""
    real = getattr(convert_module, name)

    def then_signal(*args, **kwargs):
        result = real(*args, **kwargs)
        signal.raise_signal(sig)
        return result

    monkeypatch.setattr(convert_module, name, then_signal)


@pytest.mark.parametrize("sig, step, to_torch", [
    (signal.SIGTERM, "save_model", False),  # the output was written: it is removed again
    (signal.SIGINT, "load_pth", False),  # the source was read: nothing is written
    (signal.SIGTERM, "load_training_state", True),
])
def test_a_signal_stops_the_command_in_one_line_and_leaves_nothing(
        tiny, tmp_path, capsys, monkeypatch, sig, step, to_torch):
    # The handlers of StopSignals exist only in the main thread; elsewhere the signal kills.
    assert threading.current_thread() is threading.main_thread()
    src = _save(tmp_path, "sd.pth", tiny["sd"])
    if to_torch:
        src = torch_to_reiqa(src, tmp_path / "ours")
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / ("back.pth" if to_torch else "out")
    _signal_after(monkeypatch, step, sig)
    handler = signal.getsignal(sig)
    code = cli.main(["convert", str(src), str(out), *(["--to-torch"] if to_torch else [])])
    assert code == 128 + sig
    assert capsys.readouterr().err.splitlines() == [
        f"reiqa convert: interrupted by {sig.name}; nothing written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert signal.getsignal(sig) is handler  # the previous handler is back
