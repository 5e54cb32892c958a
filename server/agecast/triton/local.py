"""A real ``tritonserver`` on this machine, from the ``nvidia-pytriton`` wheel (tests, bench).

The wheel bundles Triton Inference Server 2.51 with only the Python backend (no ONNX Runtime or
TensorRT backend); it runs on the CPU. Its Python backend needs a stub built for the running
Python's minor version (the wheel ships 3.8–3.13) and that Python's ``libpython3.X.so.1.0``.
Models of ``--platform python`` repositories run with this environment's onnxruntime.
Production runs NVIDIA's Triton container instead (docker/compose.triton.yaml).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType

from agecast.errors import BackendUnavailable

log = logging.getLogger(__name__)
# where the Python backend keeps its shared memory with the stubs
_REGION_PREFIX = "/dev/shm/triton_python_backend_shm_region_"


def bundled_server() -> tuple[Path, Path]:
    """(the wheel's ``tritonserver`` folder, its bundled libraries); BackendUnavailable saying
    what is missing."""
    spec = find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "nvidia-pytriton is not installed: its wheel carries the tritonserver binary "
            "(pip install nvidia-pytriton --no-deps)"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    dist = root / "tritonserver"
    libs = root.parent / "nvidia_pytriton.libs"
    binary = dist / "bin" / "tritonserver"
    if not binary.is_file():
        raise BackendUnavailable(f"nvidia-pytriton has no {binary}")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not (dist / "python_backend_stubs" / version / "triton_python_backend_stub").is_file():
        raise BackendUnavailable(f"nvidia-pytriton ships no Python backend stub for {version}")
    return dist, libs


def _libpython_dirs() -> list[str]:
    """Where this Python's shared libpython is (the stub links libpython3.X.so.1.0)."""
    found = [sysconfig.get_config_var("LIBDIR") or ""]
    return [d for d in found if d and Path(d).is_dir()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _backend_regions(pid: int) -> set[Path]:
    """The Python backend's shared-memory files process ``pid`` maps (none where /proc is
    not Linux's)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    found = set()
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith(_REGION_PREFIX):
            found.add(Path(fields[5].removesuffix(" (deleted)")))
    return found


class LocalTriton:
    """``tritonserver`` serving ``repository`` on 127.0.0.1 (gRPC only), started and stopped
    by this object; it can be killed and started again on the same port."""

    def __init__(self, repository: Path, *, port: int | None = None, log_file: Path) -> None:
        self.repository = repository
        self.port = port or free_port()
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None
        self._home = Path(tempfile.mkdtemp(prefix="agecast-triton-"))
        dist, self._libs = bundled_server()
        self._dist = self._home / "tritonserver"
        shutil.copytree(dist, self._dist, ignore=shutil.ignore_patterns("python_backend_stubs"))
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        shutil.copy(
            dist / "python_backend_stubs" / version / "triton_python_backend_stub",
            self._dist / "backends" / "python" / "triton_python_backend_stub",
        )

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it serves every model in the repository."""
        env = dict(os.environ)
        paths = [str(self._libs), *_libpython_dirs(), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = ":".join(p for p in paths if p)
        command = [
            str(self._dist / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={self._dist / 'backends'}",
            f"--cache-directory={self._dist / 'caches'}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.port}",
            "--allow-http=false",
            "--allow-metrics=false",
            "--exit-timeout-secs=2",
        ]
        with self.log_file.open("ab") as out:
            self._proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import tritonclient.grpc as grpcclient

        deadline = time.monotonic() + timeout
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{self.port}")
        try:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise BackendUnavailable(
                        f"tritonserver exited with {self._proc.returncode} while starting: "
                        f"see {self.log_file}\n{self.log_tail()}"
                    )
                try:
                    if client.is_server_ready(client_timeout=1.0):
                        return
                except Exception as exc:  # not listening yet
                    log.debug("waiting for tritonserver: %s", exc)
                time.sleep(0.1)
        finally:
            client.close()
        self.kill()
        raise BackendUnavailable(
            f"tritonserver was not ready in {timeout:.0f} s: see {self.log_file}"
        )

    def log_tail(self, lines: int = 30) -> str:
        """The server log's last lines (without its tables)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if not line.startswith(("|", "+"))]
        return "\n".join(kept[-lines:])

    def kill(self) -> None:
        """SIGKILL the server (and its Python stubs: its process group), as a crash would."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._kill(self._proc)
        self._proc.wait()
        self._proc = None

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``proc``'s group, then remove the Python backend's shared-memory files it
        mapped: a killed server cannot (a stopped one does), and each would keep 1 MB of
        /dev/shm until the machine restarts."""
        regions = _backend_regions(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for region in regions:
            region.unlink(missing_ok=True)

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP the server and its stubs (a hung server: connections stay open, nothing
        answers); ``frozen=False`` lets them go on (SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._kill(self._proc)
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> LocalTriton:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
