"""How agecast names its models on a Triton Inference Server: one place for the repository
writer (``agecast triton repo``) and the backend that calls the server, so the two agree.

An identity ``ID`` is the Triton model ``agecast_ID``; the version is a number taken from the
sha256 of its ONNX file, so a re-trained identity is a new version and the backend asks for
exactly the bytes it checked (a server holding another version answers "no such version").
No heavy imports here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agecast.errors import BackendUnavailable

IDENTITY_LABEL = "identity "  # identities/package.py loads an identity with this label prefix
MODEL_PREFIX = "agecast_"
# The first 12 hex digits of the sha256 (48 bits): a Triton version is a positive int64.
_VERSION_HEX = 12

# TensorSpec dtype ↔ Triton's datatype names (the gRPC protocol's and config.pbtxt's)
TRITON_DATATYPES = {
    "float32": "FP32",
    "float16": "FP16",
    "uint8": "UINT8",
    "int32": "INT32",
    "int64": "INT64",
    "bool": "BOOL",
}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def model_name(identity_id: str) -> str:
    """The Triton model name of identity ``identity_id`` (Triton allows [A-Za-z0-9_.-])."""
    return MODEL_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", identity_id)


def model_version(sha256: str) -> int:
    """The Triton version of the ONNX file with digest ``sha256`` (hex)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return int(sha256[:_VERSION_HEX], 16)


def file_version(path: Path) -> tuple[str, int]:
    """(sha256, Triton version) of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    return sha, model_version(sha)


def identity_of(label: str) -> str | None:
    """The identity id a backend ``load`` label names, or None for any other model."""
    return label.removeprefix(IDENTITY_LABEL) if label.startswith(IDENTITY_LABEL) else None


@dataclass(frozen=True, slots=True)
class TritonConfig:
    """Where the Triton server is and how agecast talks to it (from the ``triton_*`` settings).

    ``shm``: ``auto`` uses system shared memory when the server is on this host (a loopback
    address), ``on`` always (the server must share /dev/shm with agecast), ``off`` never.
    ``local``: the in-process backend for every model that is not an identity (the detector,
    landmarks, recogniser stay on the node).
    """

    url: str
    timeout_ms: int = 50
    retry_ms: int = 250
    shm: str = "auto"
    local: str = "auto"

    @property
    def target(self) -> str:
        """``HOST:PORT`` for the gRPC client, from ``grpc://HOST:PORT`` or ``HOST:PORT``."""
        return _parse(self.url)[0]

    @property
    def host(self) -> str:
        return _parse(self.url)[1]

    @property
    def use_shm(self) -> bool:
        if self.shm == "on":
            return True
        return self.shm == "auto" and self.host in LOOPBACK_HOSTS


def _parse(url: str) -> tuple[str, str]:
    text = url if "://" in url else f"grpc://{url}"
    parts = urlsplit(text)
    if parts.scheme != "grpc":
        raise BackendUnavailable(
            f"triton_url {url!r}: agecast talks to Triton over gRPC only — "
            "give grpc://HOST:8001 (Triton's gRPC port)"
        )
    if not parts.hostname:
        raise BackendUnavailable(f"triton_url {url!r} names no host: give grpc://HOST:8001")
    port = parts.port or 8001
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}", host
