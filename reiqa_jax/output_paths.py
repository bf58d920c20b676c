"""Where a command may write, checked before anything is computed.

One rule for every command that writes a folder of its own kind (``reiqa
export``'s checkpoint, a model folder for ``reiqa score``, ``reiqa demo``'s
folder): a new folder, an empty one, or one of that kind, recognised by a
marker inside it; an existing one of that kind only with ``--overwrite``
(or always, for a folder a command resumes in). A file, or a folder of other
things, is never written into. Each refusal is one line, raised as the
caller's own error class.

Standard library only.
"""
from __future__ import annotations

import os
from pathlib import Path

from reiqa_jax.errors import ReiqaError


def not_a_plain_file(path) -> str | None:
    """Why ``path`` must not be replaced by an output file written under a
    temporary name and moved into place, or None: a link (the move would
    replace the link, not its target) or a device, FIFO or socket (e.g.
    /dev/stdout, which the move would replace for the whole system)."""
    path = Path(path)
    if path.is_symlink():
        return f"{path} is a link; give the file's own path"
    if path.exists() and not path.is_file() and not path.is_dir():
        return f"{path} is a device, FIFO or socket, not a file; give a file path"
    return None


def unwritable_parent(path) -> Path | None:
    """The nearest existing folder above (or at) ``path`` when it cannot be
    written in, else None: creating ``path`` would fail there."""
    path = Path(path).absolute()
    parent = next(p for p in (path, *path.parents) if p.exists())
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return None
    return parent


def check_output_folder(path, *, kind: str, marker: str | tuple[str, ...], overwrite: bool,
                        error: type[ReiqaError], label: str = "", what: str | None = None
                        ) -> Path:
    """``path`` if a folder of ``kind`` may be written there; raises ``error`` otherwise.

    marker: the name inside a folder that makes it one of ``kind`` (e.g.
    ``reiqa.json``), or several names, any of which does. overwrite: whether
    an existing folder of ``kind`` may be replaced (or written into again).
    label: what to call ``path`` in the message (e.g. ``"OUT "``); what: what
    the folder is for (default ``kind``).
    """
    path = Path(path)
    shown = f"{label}{path}"
    if path.exists() and not path.is_dir():
        raise error(f"{shown} is a file; give a folder for the {what or kind}")
    if path.is_dir() and any(path.iterdir()):
        markers = (marker,) if isinstance(marker, str) else marker
        if not any((path / name).exists() for name in markers):
            raise error(f"{shown} exists and is not a {kind} folder; choose a new or empty "
                        f"folder (a folder of other things is never written into)")
        if not overwrite:
            raise error(f"{shown} already exists; pass --overwrite to replace it")
    parent = unwritable_parent(path)
    if parent is not None:
        raise error(f"cannot write {path}: {parent} is not a writable folder")
    return path
