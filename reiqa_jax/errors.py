"""One-line errors: how every ``reiqa`` command and library error reports a failure.

* ``error(prog, message)``: prints ``PROG: error: MESSAGE`` on stderr and
  returns the exit status (2 by default: a usage error, nothing computed).
* ``one_line(exc)``: an exception's message on one line, to put into such a
  message or into another exception's.
* ``ReiqaError``: the base of every error a user can fix or must be told
  about. It carries the one-line message and the exit status, so a command
  catches the base and reports it with ``error(prog, str(exc), exc.status)``.

Standard library only, so command modules import it at the top.
"""
import re
import sys

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ReiqaError(Exception):
    """A failure reported to the user as one line; ``status`` is the exit
    status a command returns for it (2: bad input or usage, nothing computed;
    1: a run that failed on the way)."""

    status: int = 2


def error(prog: str, message: str, status: int = 2) -> int:
    """Prints ``PROG: error: MESSAGE`` on stderr; returns ``status`` (2: a
    usage error, nothing computed; 1: a run that failed on the way)."""
    # one write: print() writes the text and the newline apart, and a line
    # another thread writes in between would be glued to this one
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.stderr.flush()
    return status


def one_line(exc: BaseException, *, with_type: bool = False, first_line: bool = False) -> str:
    """The message of ``exc`` on one line: terminal colour codes removed,
    runs of whitespace (newlines included) made one space; the type name
    when the message is empty.

    with_type: prefix ``TypeName: `` (for errors whose type says what failed,
    e.g. a decoder's ``OSError`` vs ``ValueError``).
    first_line: keep only the first line (for libraries whose messages go on
    with paragraphs of advice, e.g. ``torch.load``).
    """
    text = _ANSI.sub("", str(exc)).strip()
    if first_line:
        text = text.splitlines()[0] if text else ""
    text = " ".join(text.split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type else text
