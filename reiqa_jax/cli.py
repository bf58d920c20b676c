"""The ``reiqa`` command.

Each subcommand lives in ``reiqa_jax/commands/<name>.py`` (``HELP``,
``add_arguments``, ``run``) over a Python API; errors a user can fix are
printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module in reiqa_jax.commands, in the order `reiqa --help` lists them.
COMMANDS = (
    "demo",
    "train",
    "export",
    "extract",
    "score",
    "regress",
    "evaluate",
    "convert",
)


def _module(name: str):
    return importlib.import_module(f"reiqa_jax.commands.{name}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reiqa-jax")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a command took the signals over (reiqa_jax.interrupts)
        print("reiqa: interrupted", file=sys.stderr, flush=True)
        return 130


def _main(argv: list[str] | None) -> int:
    from reiqa_jax.config_file import ConfigError, split_overrides
    from reiqa_jax.errors import error

    argv = sys.argv[1:] if argv is None else list(argv)
    try:  # `reiqa train`'s --config.KEY=VALUE overrides: any key, so not argparse options
        argv, overrides = split_overrides(argv)
    except ConfigError as exc:
        return error("reiqa", str(exc))
    parser = argparse.ArgumentParser(
        prog="reiqa", description="Re-IQA image-quality features, training and scores (JAX).")
    parser.add_argument("--version", action="version", version=f"reiqa {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _module(name)
        p = sub.add_parser(name, help=module.HELP,
                           description=getattr(module, "DESCRIPTION", module.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
    args = parser.parse_args(argv)
    if overrides and args.command != "train":
        parser.error(f"--config.{overrides[0][0]} is an option of 'reiqa train' only")
    args.config_overrides = overrides
    return _module(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
