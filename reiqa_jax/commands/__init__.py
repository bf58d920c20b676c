"""One module per ``reiqa`` subcommand.

Each module defines ``HELP`` (one line for ``reiqa --help``),
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status). Modules
import only argparse-level things at the top, so ``reiqa --help`` stays fast;
the heavy imports (jax, orbax, torch) happen inside ``run``.
"""
import sys


def error(command: str, message: str) -> int:
    """Prints ``reiqa COMMAND: error: MESSAGE`` on stderr; returns exit status 2."""
    print(f"reiqa {command}: error: {message}", file=sys.stderr)
    return 2
