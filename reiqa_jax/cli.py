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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS and getattr(_module(argv[0]), "OWN_PARSER", False):
        return _module(argv[0]).main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="reiqa", description="Re-IQA image-quality features, training and scores (JAX).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _module(name)
        if getattr(module, "OWN_PARSER", False):
            sub.add_parser(name, help=module.HELP, add_help=False)
            continue
        p = sub.add_parser(name, help=module.HELP,
                           description=getattr(module, "DESCRIPTION", module.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
    args = parser.parse_args(argv)
    return _module(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
