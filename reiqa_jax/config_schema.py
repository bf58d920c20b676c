"""The training config's schema: every key, its type and range or choices, and
whether a restarted run may change it.

``KEYS`` lists each key once, so adding a key is one line. ``RULES`` are the
checks that involve several keys (shapes that must fit together).
``check(config)`` runs both before anything is computed or written and raises
ConfigError with one line naming the first problem. A key the schema does not
know is an error (a misspelt key would otherwise be ignored while
``config.json`` records it as if it had been used); a key the config lacks
takes its ``default`` when the schema gives one, else is an error.

What a restart may change (``Key.resume``):

* ``fixed``: the model, the optimizer, the views or the data order; a run
  restarted with another value would not continue the run its checkpoints
  hold, so ``reiqa train`` refuses it.
* ``length``: how long the run is (``num_epochs``, ``num_steps``); taken as
  long as the run has not gone past the new end. The recipes' cosine follows
  the new length from the step it is taken at.
* ``safe``: logging, checkpointing and input-pipeline settings, and where the
  data is (``data``: the image list itself is checked separately); taken.

Changes that are taken are recorded in the workdir's ``config.json``
(``reiqa_jax.workdir``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from reiqa_jax.config_file import ConfigError

FIXED, LENGTH, SAFE = "fixed", "length", "safe"
_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Key:
    """type: 'int', 'float', 'str', 'bool', 'int_pair' (a tuple of two ints) or
    'int_tuple' (a tuple of any number of ints).
    low / high: inclusive bounds; above: exclusive lower bound; choices: the
    values allowed; resume: FIXED, LENGTH or SAFE (module docstring)."""

    type: str
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple = ()
    resume: str = FIXED
    default: Any = _MISSING


def Int(low=None, high=None, **kw) -> Key:
    return Key("int", low=low, high=high, **kw)


def Float(low=None, high=None, **kw) -> Key:
    return Key("float", low=low, high=high, **kw)


def Str(**kw) -> Key:
    return Key("str", **kw)


def Choice(*choices, **kw) -> Key:
    kind = {bool: "bool", int: "int", float: "float"}.get(type(choices[0]), "str")
    return Key(kind, choices=choices, **kw)


def IntPair(low=None, **kw) -> Key:
    return Key("int_pair", low=low, **kw)


def IntTuple(low=None, **kw) -> Key:
    return Key("int_tuple", low=low, **kw)


KEYS: dict[str, Key] = {
    "seed": Int(0),
    "data": Str(resume=SAFE),  # a CSV, a folder of images or a generated source (data.sources); checked apart
    "branch": Choice("quality", "content"),
    "init_from": Str(),
    "model.depth": Choice(10, 18, 34, 50, 101),
    "model.width": Float(above=0),
    "model.feat_dim": Int(1),
    "num_epochs": Int(0, resume=LENGTH),
    "num_steps": Int(0, resume=LENGTH),
    "batch_size": Int(1),
    "optimizer": Choice("lars", "sgd"),
    "learning_rate": Float(above=0),
    "momentum": Float(0, 1),
    "weight_decay": Float(0),
    "trust_coefficient": Float(above=0),
    "lr_schedule": Choice("official", "cosine", "step"),
    "warmup_epochs": Float(0),  # may be a fraction (a run shorter than an epoch warms up per step)
    "warmup_from": Float(0),
    "lr_decay_rate": Float(0, 1),
    "lr_decay_epochs": IntTuple(1, default=(120, 160)),  # lr_schedule 'step' (PyContrast)
    "queue_size": Int(1),
    "temperature": Float(above=0),
    "negatives": Choice("queue", "queue+batch", "queue+pristine", "queue+siblings",
                        default="queue"),  # +batch / +pristine / +siblings: moco.info_nce
    "ema_momentum": Float(0, 1),
    "shuffle_bn": Choice("host", "global", "none", "sync"),
    "crop_swap": Choice("official", "clean", "none"),
    "views.patch_size": Int(1),
    "views.n_aug": Int(1, 26),
    "views.n_scale": Choice(1, 2),
    "views.n_distortions": Choice(1, 2),
    "views.schedule": Choice("independent", "balanced"),
    "views.ops": Str(),  # a set of reiqa_jax.augment.op_sets (rule _known_ops)
    "tile_hw": IntPair(1),  # content branch: the canvas pictures are shrunk to fit
    "canvas.step": Int(1),  # quality branch: whole pictures in canvas classes (data/canvases.py)
    "canvas.max_side": Int(49),
    "canvas.min_class": Int(0),
    "canvas.max_classes": Int(0),
    "dtype": Choice("auto", "float32", "bfloat16"),
    "log_every_steps": Int(1, resume=SAFE),
    "checkpoint_every_steps": Int(1, resume=SAFE),
    "keep_checkpoints": Int(1, resume=SAFE),
    "input.workers": Int(0, resume=SAFE),
    "input.threads": Int(1, resume=SAFE),
    "input.prefetch": Int(1, resume=SAFE),
    "input.max_pixels": Int(0),  # 0 = the images module's limit; decides which images decode
}


def _crop_fits_canvas(c) -> str | None:
    """Quality branch: the official overlapping offsets exist for the patch,
    and a crop fits the largest canvas (smaller pictures are cropped as the
    official CenterCrop does: zero-padded)."""
    if c.branch != "quality":
        return None
    if c.views.patch_size > c.canvas.max_side:
        return (f"views.patch_size {c.views.patch_size} is larger than the largest canvas "
                f"(canvas.max_side {c.canvas.max_side}), so every crop would be zero padding; "
                f"use a patch of at most {c.canvas.max_side} or a larger canvas.max_side")
    from reiqa_jax.augment.crops import offset_table

    try:
        offset_table(c.views.patch_size)
    except ValueError:
        return (f"views.patch_size {c.views.patch_size} is too small for the official "
                f"overlapping crop offsets")
    return None


def _known_ops(c) -> str | None:
    from reiqa_jax.augment.op_sets import op_set

    try:
        op_set(c.views.ops)
    except ValueError as e:
        return str(e)
    return None


def _has_a_length(c) -> str | None:
    if c.num_steps == 0 and c.num_epochs == 0:
        return "set num_epochs >= 1 or num_steps >= 1"
    return None


def _keys_fit_queue(c) -> str | None:
    pairs = c.views.n_scale * (c.views.n_aug + 1) if c.branch == "quality" else 1
    if c.batch_size * pairs > c.queue_size:
        return (f"batch_size {c.batch_size} x {pairs} crop pairs = {c.batch_size * pairs} keys "
                f"per step do not fit queue_size {c.queue_size}")
    return None


def _version_negatives_need_quality(c) -> str | None:
    if c.negatives in ("queue+pristine", "queue+siblings") and c.branch != "quality":
        return (f"negatives {c.negatives} needs the quality branch (its pictures' distorted "
                f"versions); the content branch has none")
    return None


RULES: tuple[Callable[[Any], str | None], ...] = (_has_a_length, _crop_fits_canvas,
                                                 _keys_fit_queue, _known_ops,
                                                 _version_negatives_need_quality)


def flatten(config) -> dict[str, Any]:
    """{'a.b': value} of a ConfigDict or nested dict (groups are not leaves)."""
    out = {}
    for name, value in config.items():
        if hasattr(value, "items"):
            out.update({f"{name}.{k}": v for k, v in flatten(value).items()})
        else:
            out[name] = value
    return out


def _type_error(name: str, key: Key, value) -> str | None:
    if key.type == "bool":
        ok = isinstance(value, bool)
    elif key.type == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif key.type == "float":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value))
    elif key.type == "str":
        ok = isinstance(value, str)
    else:  # int_pair, int_tuple
        ok = (isinstance(value, (tuple, list)) and (len(value) == 2 or key.type == "int_tuple")
              and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
    if ok:
        return None
    want = {"int": "an integer", "float": "a finite number", "str": "a string",
            "bool": "true or false", "int_pair": "two integers like (384, 512)",
            "int_tuple": "integers like (120, 160)"}[key.type]
    return f"{name} must be {want}, got {value!r}"


def _value_error(name: str, key: Key, value) -> str | None:
    if key.choices and value not in key.choices:
        return f"{name} must be one of {', '.join(map(str, key.choices))}; got {value!r}"
    for v in (value if key.type in ("int_pair", "int_tuple") else (value,)):
        if key.low is not None and v < key.low:
            return f"{name} must be at least {key.low}, got {value!r}"
        if key.high is not None and v > key.high:
            return f"{name} must be at most {key.high}, got {value!r}"
        if key.above is not None and v <= key.above:
            return f"{name} must be more than {key.above}, got {value!r}"
    return None


def check(config):
    """Checks ``config`` (ml_collections.ConfigDict) against KEYS and RULES and
    fills in keys the schema gives a default; returns it, or raises
    ConfigError with one line."""
    values = flatten(config)
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]}"
                          + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                          + "; the keys a training config takes are listed in "
                          "reiqa_jax/config_schema.py")
    for name, key in KEYS.items():
        if name not in values:
            if key.default is _MISSING:
                raise ConfigError(f"the config has no key {name} (every key of "
                                  f"configs/reiqa_quality_r50.py is needed)")
            _set(config, name, key.default)
            values[name] = key.default
        problem = _type_error(name, key, values[name]) or _value_error(name, key, values[name])
        if problem:
            raise ConfigError(problem)
    for rule in RULES:
        problem = rule(config)
        if problem:
            raise ConfigError(problem)
    return config


def _set(config, dotted: str, value) -> None:
    *groups, leaf = dotted.split(".")
    for group in groups:
        config = config[group]
    config[leaf] = value


def normalized(values: dict[str, Any]) -> dict[str, Any]:
    """Flat values as JSON gives them back (tuples as lists), for comparing a
    config with the one a workdir recorded."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def differences(recorded: dict[str, Any], config) -> dict[str, tuple[Any, Any]]:
    """{key: (recorded value, new value)} for every key that differs between a
    recorded flat config (``config.json``) and ``config``; a key the record
    lacks counts as its schema default."""
    new = normalized(flatten(config))
    old = normalized(recorded)
    out = {}
    for name in sorted(set(old) | set(new)):
        default = KEYS[name].default if name in KEYS else _MISSING
        before = old.get(name, default)
        if before is _MISSING or before != new.get(name, _MISSING):
            out[name] = (None if before is _MISSING else before, new.get(name))
    return out


def refused(changes: dict[str, tuple[Any, Any]]) -> list[str]:
    """The changed keys a restart may not take (FIXED ones, and unknown ones)."""
    return [k for k in changes if k not in KEYS or KEYS[k].resume == FIXED]
