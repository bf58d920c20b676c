"""Convert official Re-IQA PyTorch checkpoints to ours and back.

The command ``reiqa convert SRC OUT [--ema] [--to-torch]`` (also
``tools/convert_torch_ckpt.py``) is ``reiqa_jax/commands/convert.py``; this
module is the conversion itself.

torch -> ours (default): SRC is a ``.pth`` read with ``torch.load(...,
weights_only=True)`` (a file that needs arbitrary code to unpickle is
refused). Accepted layouts:

* the released/training layout ``{'model': DDP state_dict ('module.'),
  'model_ema', 'contrast': {'memory': (K, 128)}, 'optimizer', 'epoch'}``:
  the model, and (unless ``--ema``) the momentum model, the queue, the LARS
  momentum buffers and the epoch are written, so training can resume here.
  ``--ema`` converts ``model_ema`` as the model instead (nothing else).
* a bare ``RGBSingleHead`` state_dict, with or without ``module.``.
* a plain torchvision ResNet state_dict (``conv1.weight`` ... ``fc.*``):
  ``fc.*`` is ignored; the encoder is converted and the projection head is
  freshly initialised (torch-style uniform init, seed 0, feat_dim 128),
  recorded as ``meta['head'] = 'random-init'``. Only the encoder is
  meaningful then, which is all feature extraction uses.

The architecture is inferred from the tensors (depth from block counts and
type, width from the stem, feat_dim from ``head.2``). Every tensor is
accounted for: missing or unexpected keys and shape mismatches stop the
conversion with an error naming them, before anything is written
(``num_batches_tracked`` is dropped). Momentum buffers are read from the
optimizer state (``'mu'`` for the official LARS, ``'momentum_buffer'`` for
torch SGD) by parameter index, i.e. the order of ``model.parameters()``;
a parameter without a buffer gets zeros (what both optimizers start from).

ours -> torch (``--to-torch``): SRC is our checkpoint directory; OUT a .pth in
the released layout: ``'model'`` with ``module.encoder.*``/``module.head.*``
keys including ``num_batches_tracked`` (0) so strict loading into
``DataParallel(RGBSingleHead(head='mlp'))`` works, plus ``'model_ema'`` (no
prefix), ``'contrast': {'memory'}``, ``'epoch'`` when present, and an
``'optimizer'`` state_dict for the official LARS (``'mu'`` buffers; the
hyper-parameters recorded at import, else lr 0, wd 1e-4, momentum 0.9,
trust 1e-3 — the official trainer resets lr every epoch anyway).

Errors raise :class:`ConversionError` (one line); nothing is written then.
The output folder is checked before the source is read. Both directions take
a ``check`` hook, called between their steps, that may stop the conversion
(the command stops there on SIGINT / SIGTERM). torch's warnings are not shown.
"""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Mapping

import numpy as np

from reiqa_jax import torch_layout as tl
from reiqa_jax.checkpoint import (CheckpointError, build_model, expected_shapes, few,
                                  load_model, load_training_state, model_arrays,
                                  read_header, save_model, tree_mismatch)
from reiqa_jax.errors import ReiqaError, one_line

DEFAULT_FEAT_DIM = 128
HEAD_SEED = 0
# Official LARS defaults (moco/optimizer.py with the README's flags).
LARS_DEFAULTS = {"lr": 0.0, "weight_decay": 1e-4, "momentum": 0.9,
                 "trust_coefficient": 0.001}
_BUFFER_NAMES = ("mu", "momentum_buffer")


class ConversionError(ReiqaError, ValueError):
    """The source cannot be converted; nothing was written."""


def _torch():
    try:
        import torch
    except ImportError:
        raise ConversionError("PyTorch is needed to read or write .pth files; its CPU build "
                              "is enough: pip install torch --index-url "
                              "https://download.pytorch.org/whl/cpu") from None
    return torch


def _is_torch_file(path: str) -> bool:
    """True for torch's zip format and for pickles (torch's legacy format)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as handle:
        head = handle.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def prepare_output(out) -> None:
    """Makes OUT's folder and proves it writable, before anything is read."""
    parent = os.path.dirname(os.path.abspath(os.fspath(out)))
    try:
        os.makedirs(parent, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise ConversionError(f"cannot write into {parent}: "
                              f"{one_line(e, first_line=True)}") from None


def load_pth(path) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with clear errors."""
    torch = _torch()
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "reiqa.json")):
            raise ConversionError(f"{path} is a reiqa-jax checkpoint folder already; to write "
                                  f"it as a PyTorch .pth, add --to-torch")
        raise ConversionError(f"{path} is a folder; give the PyTorch .pth file")
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        if not _is_torch_file(path):
            raise ConversionError(f"{path} is not a PyTorch checkpoint (neither torch's zip "
                                  f"format nor a pickle)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except ConversionError:
        raise
    except pickle.UnpicklingError as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if "Weights only load failed" in text and found:
            raise ConversionError(
                f"{path} holds Python objects ({found.group(1).rstrip('.,')}) and needs "
                f"arbitrary code to unpickle, refused (only weights-only checkpoints are "
                f"read)") from None
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint: "
                              f"{one_line(e, first_line=True)}") from None
    except Exception as e:
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint: "
                              f"{one_line(e, first_line=True)}") from None


# ----------------------------------------------------------------------------
# torch -> ours

def _tensor_dict(sd: Any, what: str) -> dict[str, Any]:
    torch = _torch()
    if not isinstance(sd, Mapping) or not sd:
        raise ConversionError(f"{what} is not a non-empty state_dict")
    bad = [str(k) for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{what} has non-tensor entries: {few(bad)}")
    return dict(sd)


def _strip_module(sd: dict, what: str) -> dict:
    prefixed = [k for k in sd if k.startswith("module.")]
    if not prefixed:
        return sd
    if len(prefixed) != len(sd):
        raise ConversionError(f"{what} mixes keys with and without 'module.': "
                              f"{few(k for k in sd if not k.startswith('module.'))}")
    return {k[len("module."):]: v for k, v in sd.items()}


def _normalise_keys(sd: dict, what: str) -> tuple[dict, str, list[str]]:
    """-> (state_dict with encoder./head. keys, layout name, dropped keys)."""
    sd = _strip_module(sd, what)
    if any(k.startswith(("encoder.", "head.")) for k in sd):
        return sd, "reiqa", []
    if "conv1.weight" in sd and any(k.startswith("layer1.") for k in sd):
        dropped = sorted(k for k in sd if k.startswith("fc."))
        return ({f"encoder.{k}": v for k, v in sd.items() if not k.startswith("fc.")},
                "torchvision", dropped)
    raise ConversionError(f"{what}: neither a Re-IQA (encoder.*, head.*) nor a "
                          f"torchvision ResNet state_dict; keys start {few(sorted(sd), 4)}")


def _to_numpy(t) -> np.ndarray:
    return t.detach().cpu().to(dtype=_torch().float32).numpy().copy()


def _convert_model(sd: dict, what: str, arch: dict | None = None,
                   has_head: bool = True) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """Torch state_dict (encoder./head. keys) -> (arch, our model arrays).

    Checks every key and shape against the layout of the inferred (or given)
    architecture; raises ConversionError naming all problems.
    """
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    if arch is None:
        try:
            arch = tl.infer_arch(shapes)
        except tl.LayoutError as e:
            raise ConversionError(f"{what}: {e}") from None
        if arch["feat_dim"] is None:
            if has_head:
                raise ConversionError(f"{what}: no projection head (head.0.*, head.2.*)")
            arch["feat_dim"] = DEFAULT_FEAT_DIM
    ours = expected_shapes(arch)
    entries = tl.model_layout(arch["depth"], head=has_head)
    want = {e.torch_key: (tl.torch_shape(e.kind, ours[e.collection][e.path])
                          if e.kind != tl.COUNTER else ()) for e in entries}
    counters = {e.torch_key for e in entries if e.kind == tl.COUNTER}
    problems = tree_mismatch({k: v for k, v in want.items() if k not in counters},
                             {k: v for k, v in shapes.items() if k not in counters})
    if problems:
        raise ConversionError(f"{what} (arch {arch}): " + "; ".join(problems))
    arrays: dict[str, dict[str, np.ndarray]] = {"params": {}, "batch_stats": {}}
    for e in entries:
        if e.kind != tl.COUNTER:
            arrays[e.collection][e.path] = tl.ours_from_torch(e.kind, _to_numpy(sd[e.torch_key]))
    return arch, arrays


def _fresh_head(arch: dict) -> dict[str, np.ndarray]:
    """Torch-style random init of the projection head (seed HEAD_SEED)."""
    from flax import nnx
    from reiqa_jax.models import ProjectionHead
    in_dim = expected_shapes(arch)["params"]["head/fc1/kernel"][0]
    head = ProjectionHead(in_dim, arch["feat_dim"], rngs=nnx.Rngs(HEAD_SEED))
    flat = tl.flatten(nnx.to_pure_dict(nnx.state(head, nnx.Param)))
    return {f"head/{k}": np.asarray(v, np.float32) for k, v in flat.items()}


def _momentum_buffers(opt: Any, depth: int, params: Mapping[str, np.ndarray]
                      ) -> tuple[dict[str, np.ndarray] | None, dict]:
    """Optimizer state_dict -> ({our param path: buffer} or None, hparams)."""
    if not (isinstance(opt, Mapping) and "state" in opt and "param_groups" in opt):
        raise ConversionError("'optimizer' is not a torch optimizer state_dict")
    order = tl.param_paths_in_torch_order(depth)
    kinds = {e.path: e.kind for e in tl.model_layout(depth) if e.is_torch_parameter}
    indices = [i for g in opt["param_groups"] for i in g.get("params", [])]
    if len(indices) != len(order):
        raise ConversionError(f"'optimizer' covers {len(indices)} parameters, the model "
                              f"has {len(order)}")
    hparams = {k: v for k, v in opt["param_groups"][0].items()
               if k != "params" and (v is None or isinstance(v, (int, float, bool)))}
    state = opt["state"]
    out, found, wrong = {}, 0, []
    for path, idx in zip(order, indices):
        entry = state.get(idx, {})
        buf = next((entry[n] for n in _BUFFER_NAMES if entry.get(n) is not None), None)
        if buf is None:
            out[path] = np.zeros_like(params[path])
            continue
        found += 1
        arr = tl.ours_from_torch(kinds[path], _to_numpy(buf))
        if arr.shape != params[path].shape:
            wrong.append(f"{idx}->{path} {tuple(buf.shape)}")
        out[path] = arr
    if wrong:
        raise ConversionError(f"'optimizer' momentum buffers of wrong shape: {few(wrong)}")
    return (out if found else None), hparams


def torch_to_reiqa(src_pth, out_dir, *, ema: bool = False,
                   check: Callable[[], None] | None = None) -> str:
    """Convert a PyTorch checkpoint to our checkpoint directory ``out_dir``.

    Returns ``out_dir``. Raises ConversionError (nothing written) on any
    problem. See the module docstring for the accepted layouts. check: called
    between the steps (read, convert, write); what it raises stops the
    conversion (nothing written).
    """
    check = check or (lambda: None)
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ConversionError(f"{out_dir} already exists and is not an empty directory; "
                              f"choose a new name (reiqa convert never replaces an output)")
    prepare_output(out_dir)
    obj = load_pth(src_pth)
    check()
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{src_pth}: expected a dict, got {type(obj).__name__}")
    released = "model" in obj and isinstance(obj["model"], Mapping)
    meta: dict[str, Any] = {"source": os.path.abspath(os.fspath(src_pth)),
                            "converter": "reiqa_jax.convert.torch_to_reiqa"}
    if ema:
        if not (released and "model_ema" in obj):
            raise ConversionError(f"{src_pth}: --ema needs a training checkpoint with "
                                  "'model_ema'")
        sd_name = "model_ema"
    elif released:
        sd_name = "model"
    else:
        sd_name = "state_dict" if "state_dict" in obj and isinstance(obj["state_dict"], Mapping) else None
    sd = obj[sd_name] if sd_name else obj
    what = f"{src_pth}[{sd_name!r}]" if sd_name else os.fspath(src_pth)
    sd, layout, dropped = _normalise_keys(_tensor_dict(sd, what), what)
    has_head = layout == "reiqa"
    arch, arrays = _convert_model(sd, what, has_head=has_head)
    meta.update(source_layout="released" if released else layout, source_item=sd_name,
                dropped_keys=dropped, head="converted" if has_head else "random-init")
    if not has_head:
        arrays["params"].update(_fresh_head(arch))

    extras: dict[str, Any] = {}
    if released and not ema:
        if obj.get("model_ema") is not None:
            w = f"{src_pth}['model_ema']"
            e_sd, _, _ = _normalise_keys(_tensor_dict(obj["model_ema"], w), w)
            extras["ema_arrays"] = _convert_model(e_sd, w, arch=arch)[1]
        contrast = obj.get("contrast")
        if contrast is not None:
            mem = contrast.get("memory") if isinstance(contrast, Mapping) else None
            if mem is None:
                raise ConversionError(f"{src_pth}: 'contrast' has no 'memory' queue")
            q = _to_numpy(mem)
            if q.ndim != 2 or q.shape[1] != arch["feat_dim"]:
                raise ConversionError(f"{src_pth}: contrast memory {q.shape} is not "
                                      f"(K, {arch['feat_dim']})")
            extras["queue"] = q
        if obj.get("optimizer") is not None:
            mom, hp = _momentum_buffers(obj["optimizer"], arch["depth"], arrays["params"])
            meta["torch_optimizer_hparams"] = hp
            if mom is not None:
                extras["opt_momentum"] = tl.nest(mom)
            else:
                meta["optimizer_note"] = "no 'mu'/'momentum_buffer' in optimizer state"
    epoch = obj.get("epoch") if released else None
    if epoch is not None and not isinstance(epoch, int):
        raise ConversionError(f"{src_pth}: 'epoch' is {type(epoch).__name__}, not int")

    try:
        model = build_model(arch, arrays)
        ema_model = build_model(arch, extras["ema_arrays"]) if "ema_arrays" in extras else None
        check()
        return save_model(out_dir, model, meta=meta, ema_model=ema_model,
                          queue=extras.get("queue"), opt_momentum=extras.get("opt_momentum"),
                          epoch=epoch)
    except CheckpointError as e:
        raise ConversionError(str(e)) from None
    except OSError as e:
        raise ConversionError(f"cannot write {out_dir}: {one_line(e, first_line=True)}") from None


# ----------------------------------------------------------------------------
# ours -> torch

def _torch_state_dict(arrays: Mapping[str, Mapping[str, np.ndarray]], depth: int,
                      prefix: str) -> "OrderedDict[str, Any]":
    torch = _torch()
    sd = OrderedDict()
    for e in tl.model_layout(depth):
        if e.kind == tl.COUNTER:
            sd[prefix + e.torch_key] = torch.tensor(0, dtype=torch.long)
        else:
            # np.array copies: torch.from_numpy needs a writable array.
            a = tl.torch_from_ours(e.kind, np.array(arrays[e.collection][e.path]))
            sd[prefix + e.torch_key] = torch.from_numpy(a)
    return sd


def reiqa_to_torch(ckpt_dir, out_pth, *, check: Callable[[], None] | None = None) -> str:
    """Write our checkpoint ``ckpt_dir`` as a .pth in the released layout.

    Returns ``out_pth``. Refuses to overwrite an existing file. check: as
    for :func:`torch_to_reiqa`.
    """
    torch = _torch()
    check = check or (lambda: None)
    out_pth = os.fspath(out_pth)
    if os.path.exists(out_pth):
        raise ConversionError(f"{out_pth} already exists; choose a new name (reiqa convert "
                              f"never replaces an output)")
    if os.path.isfile(ckpt_dir):
        hint = ("; to convert a PyTorch .pth to ours, drop --to-torch"
                if _is_torch_file(os.fspath(ckpt_dir)) else "")
        raise ConversionError(f"{ckpt_dir} is a file, not a reiqa-jax checkpoint folder{hint}")
    prepare_output(out_pth)
    try:
        header = read_header(ckpt_dir)
        model = load_model(ckpt_dir)
        state = load_training_state(ckpt_dir)
    except CheckpointError as e:
        raise ConversionError(str(e)) from None
    depth = header["arch"]["depth"]
    params = model_arrays(model)
    out: dict[str, Any] = {"model": _torch_state_dict(params, depth, "module.")}
    if "ema_model" in state:
        out["model_ema"] = _torch_state_dict(model_arrays(state["ema_model"]), depth, "")
    if "queue" in state:
        out["contrast"] = {"memory": torch.from_numpy(np.array(state["queue"], np.float32))}
    hp = dict(LARS_DEFAULTS)
    hp.update(header.get("meta", {}).get("torch_optimizer_hparams") or {})
    order = tl.param_paths_in_torch_order(depth)
    opt_state = {}
    if "opt_momentum" in state:
        flat = tl.flatten(state["opt_momentum"])
        kinds = {e.path: e.kind for e in tl.model_layout(depth) if e.is_torch_parameter}
        opt_state = {i: {"mu": torch.from_numpy(tl.torch_from_ours(kinds[p], np.array(flat[p])))}
                     for i, p in enumerate(order)}
    out["optimizer"] = {"state": opt_state,
                        "param_groups": [dict(hp, params=list(range(len(order))))]}
    if "epoch" in state:
        out["epoch"] = int(state["epoch"])
    check()
    tmp = f"{out_pth}.tmp-{os.getpid()}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.save(out, tmp)
        os.replace(tmp, out_pth)
    except OSError as e:
        raise ConversionError(f"cannot write {out_pth}: {one_line(e, first_line=True)}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out_pth
