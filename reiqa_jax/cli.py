"""The ``reiqa`` command.

Each subcommand lives in ``reiqa_jax/commands/<name>.py`` (``HELP``,
``add_arguments``, ``run``) over a Python API, and only the one named on the
command line is imported; errors a user can fix are printed as one line on
stderr with exit status 2. The libraries' own log notes and warnings (absl:
orbax, TFDS) are kept off the output, their errors are not.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap

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
# Descriptions are printed as written (their paragraphs and examples kept);
# one written as a single line is wrapped to this width.
DESCRIPTION_WIDTH = 79


def _module(name: str):
    return importlib.import_module(f"reiqa_jax.commands.{name}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reiqa-jax")
    except PackageNotFoundError:
        return "unknown (not installed)"


class _PrintVersion(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"reiqa {_version()}")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    """The ``reiqa`` program (argv None: sys.argv[1:]); the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a command took the signals over (reiqa_jax.interrupts)
        print("reiqa: interrupted", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`reiqa score ... | head`): stop quietly,
        # with the status of a process that SIGPIPE ended, and keep Python's exit-time
        # flush from failing on the same pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    finally:
        if argv is None:  # the program itself: its status is decided, whatever comes now
            from reiqa_jax.interrupts import finish_quietly

            finish_quietly()


def _main(argv: list[str] | None) -> int:
    from reiqa_jax.errors import error

    argv = sys.argv[1:] if argv is None else list(argv)
    overrides = []
    if any(arg.startswith("--config.") for arg in argv):
        # `reiqa train`'s --config.KEY=VALUE overrides: any key, so not argparse options
        from reiqa_jax.config_file import ConfigError, split_overrides

        try:
            argv, overrides = split_overrides(argv)
        except ConfigError as exc:
            return error("reiqa", str(exc))
    # `reiqa COMMAND ...` imports that command's module alone and builds its
    # parser; without a known command (`reiqa --help`, a typo) every module is
    # imported for its one-line help, and no command's arguments are built.
    named = argv[0] if argv and argv[0] in COMMANDS else None
    parser = argparse.ArgumentParser(
        prog="reiqa", description="Re-IQA image-quality features, training and scores (JAX).")
    parser.add_argument("--version", action=_PrintVersion, nargs=0,
                        help="show the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if named is None:
            sub.add_parser(name, help=_module(name).HELP)
        elif name != named:
            sub.add_parser(name)
        else:
            module = _module(name)
            description = getattr(module, "DESCRIPTION", module.HELP)
            if "\n" not in description:  # one paragraph: wrapped as the others are by hand
                description = textwrap.fill(description, DESCRIPTION_WIDTH,
                                            break_on_hyphens=False)
            module.add_arguments(sub.add_parser(
                name, help=module.HELP, description=description,
                formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    if overrides and args.command != "train":
        parser.error(f"--config.{overrides[0][0]} is an option of 'reiqa train' only")
    args.config_overrides = overrides
    _library_logs_to_stderr()
    return _module(args.command).run(args)


class _OnlyLibraryErrors:
    """Passes a log record unless it is an absl record below ERROR.

    orbax, TFDS and grain log through absl; their warnings and progress
    notes ("Given directory is read only", "Creating tmp directory ...")
    describe the library's own work, not the command's, which reports what
    the user must know itself.
    """

    @staticmethod
    def filter(record) -> bool:
        import logging

        return record.levelno >= logging.ERROR or record.name.split(".")[0] != "absl"


def _library_logs_to_stderr() -> None:
    """Python logging to stderr as ``logging.basicConfig()`` sets it (which absl
    would call on its first record), less absl records below ERROR. Left alone
    when the program that runs us configured logging already."""
    import logging

    if logging.root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    handler.addFilter(_OnlyLibraryErrors())
    logging.root.addHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
