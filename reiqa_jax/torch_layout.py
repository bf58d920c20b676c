"""Name and array-layout mapping between the official PyTorch model and ours.

One table, used in both directions by ``reiqa_jax.convert``. No torch import:
everything here works on names, shapes and numpy arrays.

Torch side (``RGBSingleHead(head='mlp')`` state_dict, without the DDP
``module.`` prefix)::

    encoder.conv1.weight                      (C, 3, 7, 7)      OIHW
    encoder.bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
    encoder.layerL.B.{conv1,bn1,conv2,bn2[,conv3,bn3]}.*
    encoder.layerL.0.downsample.0.weight      1x1 projection conv
    encoder.layerL.0.downsample.1.*           its BatchNorm
    head.0.{weight,bias}                      Linear(D, D), weight (out, in)
    head.2.{weight,bias}                      Linear(D, feat_dim)

Our side: slash-joined paths into the pure dicts of
``nnx.state(model, nnx.Param)`` (collection ``params``) and
``nnx.state(model, nnx.BatchStat)`` (collection ``batch_stats``)::

    encoder/conv1/kernel                      (7, 7, 3, C)      HWIO
    encoder/bn1/{scale,bias}        params;   encoder/bn1/{mean,var} batch_stats
    encoder/layerL/B/...; downsample.0 -> downsample_conv, downsample.1 -> downsample_bn
    head/fc1/{kernel,bias}, head/fc2/{kernel,bias}   kernel (in, out)

``num_batches_tracked`` has no counterpart (our BN uses a fixed momentum):
it is dropped on import and written as 0 on export.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from reiqa_jax.errors import ReiqaError
from reiqa_jax.models.resnet import EXPANSION, STAGES

# kinds of tensors
CONV = "conv"          # torch OIHW <-> ours HWIO
LINEAR_W = "linear_w"  # torch (out, in) <-> ours (in, out)
VECTOR = "vector"      # 1-d, same on both sides
COUNTER = "counter"    # num_batches_tracked: torch only

_BN_FIELDS = (  # torch name, our name, collection
    ("weight", "scale", "params"),
    ("bias", "bias", "params"),
    ("running_mean", "mean", "batch_stats"),
    ("running_var", "var", "batch_stats"),
    ("num_batches_tracked", None, None),
)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One tensor of the torch state_dict and where it lives on our side.

    torch_key: name without ``module.`` (e.g. ``encoder.layer1.0.conv1.weight``).
    collection: ``params``, ``batch_stats`` or None (torch-only counter).
    path: slash path inside that collection, None for counters.
    kind: CONV, LINEAR_W, VECTOR or COUNTER.
    """
    torch_key: str
    collection: str | None
    path: str | None
    kind: str

    @property
    def is_torch_parameter(self) -> bool:
        """True for tensors in torch's ``model.parameters()`` (not buffers)."""
        return self.collection == "params"


def _conv_entries(tkey: str, ours: str) -> list[Entry]:
    return [Entry(f"{tkey}.weight", "params", f"{ours}/kernel", CONV)]


def _bn_entries(tkey: str, ours: str) -> list[Entry]:
    out = []
    for tname, oname, coll in _BN_FIELDS:
        if oname is None:
            out.append(Entry(f"{tkey}.{tname}", None, None, COUNTER))
        else:
            out.append(Entry(f"{tkey}.{tname}", coll, f"{ours}/{oname}", VECTOR))
    return out


def _linear_entries(tkey: str, ours: str) -> list[Entry]:
    return [Entry(f"{tkey}.weight", "params", f"{ours}/kernel", LINEAR_W),
            Entry(f"{tkey}.bias", "params", f"{ours}/bias", VECTOR)]


def model_layout(depth: int, *, head: bool = True) -> list[Entry]:
    """All tensors of the model in torch ``state_dict()`` order.

    The order matters: restricted to ``is_torch_parameter`` entries it is the
    order of ``model.parameters()``, which torch optimizers use to index their
    state (``optimizer.state_dict()['state'][i]``).
    """
    kind, counts = STAGES[depth]
    convs = ("conv1", "conv2", "conv3") if kind == "bottleneck" else ("conv1", "conv2")
    entries = (_conv_entries("encoder.conv1", "encoder/conv1")
               + _bn_entries("encoder.bn1", "encoder/bn1"))
    for i, n in enumerate(counts):
        for b in range(n):
            t, o = f"encoder.layer{i + 1}.{b}", f"encoder/layer{i + 1}/{b}"
            for j, c in enumerate(convs, start=1):
                entries += (_conv_entries(f"{t}.{c}", f"{o}/{c}")
                            + _bn_entries(f"{t}.bn{j}", f"{o}/bn{j}"))
            if b == 0 and _has_downsample(i, kind):
                entries += (_conv_entries(f"{t}.downsample.0", f"{o}/downsample_conv")
                            + _bn_entries(f"{t}.downsample.1", f"{o}/downsample_bn"))
    if head:
        entries += _linear_entries("head.0", "head/fc1") + _linear_entries("head.2", "head/fc2")
    return entries


def _has_downsample(stage: int, kind: str) -> bool:
    # Stage 0 of a bottleneck net changes channels (C -> 4C); later stages stride.
    return stage > 0 or EXPANSION[kind] != 1


# Axis permutations ours -> torch (HWIO -> OIHW, (in, out) -> (out, in)) and
# back; other kinds have the same layout on both sides.
_TO_TORCH = {CONV: (3, 2, 0, 1), LINEAR_W: (1, 0)}
_FROM_TORCH = {CONV: (2, 3, 1, 0), LINEAR_W: (1, 0)}


def torch_from_ours(kind: str, a: np.ndarray) -> np.ndarray:
    """Our array -> torch layout (numpy, C-contiguous)."""
    perm = _TO_TORCH.get(kind)
    return np.ascontiguousarray(a if perm is None else np.transpose(a, perm))


def ours_from_torch(kind: str, a: np.ndarray) -> np.ndarray:
    """Torch array -> our layout (numpy, C-contiguous)."""
    perm = _FROM_TORCH.get(kind)
    return np.ascontiguousarray(a if perm is None else np.transpose(a, perm))


def torch_shape(kind: str, our_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The torch shape of a tensor whose shape on our side is ``our_shape``."""
    perm = _TO_TORCH.get(kind)
    return tuple(our_shape) if perm is None else tuple(our_shape[i] for i in perm)


# ----------------------------------------------------------------------------
# Architecture inference from tensor shapes.

_DEPTH_BY_STAGES = {v: k for k, v in STAGES.items()}


class LayoutError(ReiqaError, ValueError):
    """The tensors do not describe a model we can represent."""


def infer_arch(shapes: Mapping[str, tuple[int, ...]]) -> dict:
    """(depth, width, feat_dim) from torch names -> shapes (no ``module.``).

    depth comes from the number of blocks per stage and the block type (a
    ``conv3`` means bottleneck); width from the stem's output channels / 64;
    feat_dim from ``head.2.weight``. Raises LayoutError when the counts match
    no supported depth, the stem and stage-1 widths disagree, or there is no
    MLP head (``feat_dim`` is then None if ``head.*`` is entirely absent).
    """
    counts = []
    for stage in range(1, 5):
        prefix = f"encoder.layer{stage}."
        idx = {int(k[len(prefix):].split(".")[0]) for k in shapes if k.startswith(prefix)}
        if idx != set(range(len(idx))):
            raise LayoutError(f"encoder.layer{stage} has non-contiguous blocks {sorted(idx)}")
        counts.append(len(idx))
    kind = "bottleneck" if "encoder.layer1.0.conv3.weight" in shapes else "basic"
    depth = _DEPTH_BY_STAGES.get((kind, tuple(counts)))
    if depth is None:
        raise LayoutError(f"no supported ResNet has {kind} blocks per stage {counts} "
                          f"(supported: {sorted(STAGES)})")
    if "encoder.conv1.weight" not in shapes:
        raise LayoutError("missing key encoder.conv1.weight: cannot infer the width")
    stem = shapes["encoder.conv1.weight"][0]
    width = stem / 64
    if int(64 * width) != stem:
        raise LayoutError(f"stem width {stem} is not int(64 * width) for any width")
    l1 = shapes.get("encoder.layer1.0.conv1.weight")
    if l1 is not None and l1[0] != stem:
        # The official net keeps a 64-channel stem for width < 1; we do not.
        raise LayoutError(f"stem has {stem} channels but layer1 {l1[0]}: only "
                          f"stem == int(64*width) is supported")
    feat_dim = None
    if "head.2.weight" in shapes:
        feat_dim = int(shapes["head.2.weight"][0])
    elif any(k.startswith("head.") for k in shapes):
        raise LayoutError("head is not the MLP head (head.0, ReLU, head.2): "
                          f"found {sorted(k for k in shapes if k.startswith('head.'))}")
    return dict(depth=depth, width=float(width) if width != int(width) else int(width),
                feat_dim=feat_dim)


def param_paths_in_torch_order(depth: int) -> list[str]:
    """Our ``params`` paths in the order of torch's ``model.parameters()``."""
    return [e.path for e in model_layout(depth) if e.is_torch_parameter]


def flatten(tree: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested dict (int or str keys) -> {slash path: leaf}."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def unflatten_like(flat: Mapping[str, object], template: Mapping, prefix: str = "") -> dict:
    """Rebuild ``template``'s nesting (keeping its key types) from a flat dict."""
    out = {}
    for k, v in template.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        out[k] = unflatten_like(flat, v, key) if isinstance(v, Mapping) else flat[key]
    return out


def nest(flat: Mapping[str, object]) -> dict:
    """{slash path: leaf} -> nested dict with string keys (orbax-friendly)."""
    out: dict = {}
    for path, v in flat.items():
        node = out
        parts = path.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out
