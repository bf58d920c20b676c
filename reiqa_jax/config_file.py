"""Experiment configs: Python files with ``get_config()`` returning an
``ml_collections.ConfigDict`` (as big_vision and the flax examples), plus
``--config.KEY=VALUE`` overrides from the command line.

A config is named by its path (``configs/smoke.py``) or by its name
(``smoke``: ``configs/smoke.py`` of the current directory, else the one the
package ships: ``configs/`` of the repository is installed inside the
package as ``reiqa_jax/configs``, see setup.py, and a source checkout reads
it in place). While a config file runs, its
folder is on ``sys.path``, so configs build on each other by importing their
siblings (``import reiqa_quality_r50``).
"""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import ml_collections

from reiqa_jax.errors import ReiqaError


class ConfigError(ReiqaError, ValueError):
    """A config cannot be found, loaded or overridden; the message is one line."""


_PACKAGE = Path(__file__).resolve().parent
# installed (wheel, pip install .): inside the package; a source checkout: beside it
SHIPPED = (_PACKAGE / "configs", _PACKAGE.parent / "configs")


def find_config(name: str) -> Path:
    path = Path(name).expanduser()
    if path.suffix == ".py":
        if not path.is_file():
            raise ConfigError(f"config file {name} does not exist")
        return path
    for folder in (Path.cwd() / "configs", *SHIPPED):
        candidate = folder / f"{name}.py"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no config named {name!r} (give a path to a .py file, or one of "
                      f"{', '.join(available_configs()) or 'none found'})")


def available_configs() -> list[str]:
    """Names of the configs the package ships."""
    folder = next((f for f in SHIPPED if f.is_dir()), None)
    return sorted(p.stem for p in folder.glob("*.py")) if folder else []


def load_config(name: str) -> ml_collections.ConfigDict:
    """Runs the config file and returns its ``get_config()``."""
    path = find_config(name).resolve()
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(f"reiqa_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config()
    except ConfigError:
        raise
    except Exception as exc:  # a broken config file: say where, in one line
        raise ConfigError(f"cannot load config {path}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(folder)
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return config


def _parse(text: str, current):
    """``text`` as a value of the type of ``current``."""
    if isinstance(current, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if isinstance(current, str):
        return text
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, (tuple, list)):
        value = ast.literal_eval(text)
        if not isinstance(value, (tuple, list)):
            raise ValueError(f"expected a tuple like (384, 512), got {text!r}")
        return type(current)(value)
    return ast.literal_eval(text)


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
    """Applies ``[("a.b", "value"), ...]``; each value parsed as the type it replaces."""
    for dotted, text in overrides:
        path = dotted.split(".")
        parent = config
        for part in path[:-1]:
            if not isinstance(parent, ml_collections.ConfigDict) or part not in parent:
                raise ConfigError(f"unknown config key {dotted}")
            parent = parent[part]
        leaf = path[-1]
        if not isinstance(parent, ml_collections.ConfigDict) or leaf not in parent:
            known = ", ".join(sorted(parent.keys())) if isinstance(
                parent, ml_collections.ConfigDict) else ""
            raise ConfigError(f"unknown config key {dotted} (known here: {known})")
        if isinstance(parent[leaf], ml_collections.ConfigDict):
            raise ConfigError(f"config key {dotted} is a group; set one of its keys")
        try:
            parent[leaf] = _parse(text, parent[leaf])
        except (ValueError, SyntaxError, TypeError) as exc:
            raise ConfigError(f"--config.{dotted}: {exc}") from None
    return config


def split_overrides(argv: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Separates ``--config.KEY=VALUE`` / ``--config.KEY VALUE`` from other arguments."""
    rest, overrides, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--config."):
            key, eq, value = arg[len("--config."):].partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{arg} needs a value")
                value, i = argv[i + 1], i + 1
            overrides.append((key, value))
        else:
            rest.append(arg)
        i += 1
    return rest, overrides
