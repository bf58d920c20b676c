"""One module per ``reiqa`` subcommand.

Each module defines ``HELP`` (one line for ``reiqa --help``),
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status), and
optionally ``DESCRIPTION`` (printed as written; one written as a single line
is wrapped). ``reiqa COMMAND`` imports that command's module alone, and
``reiqa --help`` imports every module for its ``HELP`` only; so modules
import only argparse-level things at the top, and the heavy imports (jax,
orbax, torch) happen inside ``run``. Errors are reported with
:func:`reiqa_jax.errors.error` (``reiqa COMMAND: error: ...``): a command
catches :class:`reiqa_jax.errors.ReiqaError` and reports its message and
exit status. ``outputs`` is not a subcommand: the output options ``regress``
and ``evaluate`` share (``--out`` checks, ``--save MODEL_DIR``).
"""
