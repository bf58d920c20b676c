"""One module per ``reiqa`` subcommand.

Each module defines ``HELP`` (one line for ``reiqa --help``),
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status), and
optionally ``DESCRIPTION`` (printed as written; one written as a single line
is wrapped). ``reiqa COMMAND`` imports that command's module alone, and
``reiqa --help`` imports every module for its ``HELP`` only; so modules
import only argparse-level things at the top, and the heavy imports (jax,
orbax, torch) happen inside ``run``. Errors are reported with
:func:`reiqa_jax.errors.error` (``reiqa COMMAND: error: ...``).
"""
