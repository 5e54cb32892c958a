"""Output files: checked before the work that fills them starts, and written atomically.

A render that fails at its last frame because ``--out`` names a folder it cannot write loses
the whole render; :func:`check_writable` finds that out first. :func:`atomic_output` writes next
to the target and renames at the end, so a reader never sees half a file and a failed run
leaves no partial one behind. State files (links, the cast, vouches) are private:
:func:`write_private` (0600, unique temp file, rename) under :func:`file_lock`, in a
:func:`private_dir` (0700).
"""

from __future__ import annotations

import contextlib
import fcntl
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


def private_dir(path: Path) -> Path:
    """``path`` made (if missing) and readable by its owner only (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # a folder someone else owns: leave it
        os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` (0600) atomically: a unique temp file beside it, then a rename, so
    concurrent writers never share a temp file and a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp makes it 0600
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (made 0600 if missing), across threads and processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
