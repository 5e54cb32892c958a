"""Where ``agecast serve`` listens: the port bound before anything is printed, and the address
recorded in the state folder so ``agecast links create`` prints links that reach it."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from agecast.errors import ServeError
from agecast.outfiles import write_text_atomic

log = logging.getLogger(__name__)

SERVE_JSON = "serve.json"
DEFAULT_URL = "http://127.0.0.1:8000"


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it); :class:`ServeError` saying
    what to do when the port is taken or the address is not this machine's."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host!r} is not an address of this machine ({exc})") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restarts at once
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise ServeError(
                f"port {port} on {host} is already in use (another agecast serve?): stop that "
                "program or serve on another port with --port N"
            ) from exc
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from exc
    sock.set_inheritable(True)
    return sock


def record_address(state_dir: Path, url: str, host: str, port: int) -> None:
    """Note the monitor's address in ``state_dir`` (a failure to write it only warns)."""
    doc = {"url": url, "host": host, "port": port, "pid": os.getpid(), "started": time.time()}
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(state_dir / SERVE_JSON, json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        log.warning("cannot record the monitor's address in %s: %s", state_dir, exc)


def served_address(state_dir: Path) -> str:
    """The address ``agecast serve`` last served on with this state folder, else the default."""
    try:
        url = json.loads((state_dir / SERVE_JSON).read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_URL
    return str(url) if isinstance(url, str) and url.startswith("http") else DEFAULT_URL
