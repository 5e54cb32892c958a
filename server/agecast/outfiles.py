"""Output files: checked before the work that fills them starts, and written atomically.

A render that fails at its last frame because ``--out`` names a folder it cannot write loses
the whole render; :func:`check_writable` finds that out first. :func:`atomic_output` writes next
to the target and renames at the end, so a reader never sees half a file and a failed run
leaves no partial one behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from agecast.errors import OutputError


def check_writable(path: Path, what: str) -> None:
    """Make ``path``'s folder if needed and prove a file can be written there; else
    :class:`OutputError` saying what to do. ``what`` names the output ("--out")."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder: give a file name inside it")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {path} exists and is not writable: choose another path")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(
            f"cannot write {what} {path}: {reason} ({folder}); choose a path you can write"
        ) from exc


def partial_path(path: Path) -> Path:
    """Where ``path`` is written until it is complete (same folder, same suffix)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a file name to write ``path`` under; renamed to ``path`` when the block ends
    without an error, removed when it raises."""
    path = Path(path)
    partial = partial_path(path)
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    try:
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from exc


def write_text_atomic(path: Path, text: str) -> None:
    """``path`` holds ``text`` or what it held before, never half of it."""
    with atomic_output(path) as partial:
        partial.write_text(text)
