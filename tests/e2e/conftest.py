"""Real Chromium against the real agecast server (testpattern source, testpattern identity).

Skipped, with the reason, when Debian's Chromium or Python Playwright is missing. Never runs
``playwright install``; nothing is downloaded. Screenshots go to ``$E2E_SHOTS_DIR`` (default
``/tmp/agecast-e2e``).
"""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from agecast.api.auth import LinkStore

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A second window in the background must keep running its timers like a real screen.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
REPO = Path(__file__).resolve().parents[2]
SOURCE = "testpattern:640x360@30"
WIDTH, HEIGHT = 640, 360
SHOTS = Path(os.environ.get("E2E_SHOTS_DIR", "/tmp/agecast-e2e"))
START_TIMEOUT_S = 60.0

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

if sync_playwright is None:
    SKIP_REASON: str | None = "Python Playwright is not installed (pip install playwright)"
elif not CHROMIUM.exists():
    SKIP_REASON = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
else:
    SKIP_REASON = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium or Playwright every browser test here is skipped, saying why."""
    if SKIP_REASON is None:
        return
    if os.environ.get("REQUIRE_BROWSER_TESTS"):  # CI: a missing browser is a failure
        raise pytest.UsageError(f"browser tests required but cannot run: {SKIP_REASON}")
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AgecastServer:
    """``agecast serve`` in a subprocess on 127.0.0.1; can be stopped and started again."""

    port: int
    log_path: Path
    state_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    source: str = SOURCE
    identity: str = "testpattern"
    args: list[str] = field(default_factory=list)  # more `agecast serve` flags (--config …)
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page_url(self, path: str = "/") -> str:
        """``path`` with a fresh one-time operator sign-in token (the real login flow)."""
        _, token = LinkStore(self.state_dir).create("operator", label="e2e", one_time=True)
        return f"{self.url}{path}{'&' if '?' in path else '?'}token={token}"

    def start(self) -> None:
        env = dict(os.environ)
        env["AGECAST_STATE_DIR"] = str(self.state_dir)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "server"), *filter(None, [env.get("PYTHONPATH")])]
        )
        self._log = self.log_path.open("ab")
        cmd = [
            sys.executable, "-m", "agecast.cli", "--log-level", "warning", "serve",
            "--source", self.source, "--identity", self.identity, "--port", str(self.port),
            *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agecast serve exited ({self.proc.returncode}): {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2) as res:
                    if res.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"agecast serve did not answer in {START_TIMEOUT_S} s: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def control(self, **values: Any) -> dict[str, Any]:
        import json

        _, token = LinkStore(self.state_dir).create("operator", label="e2e-api", expires_s=60)
        req = urllib.request.Request(
            self.url + "/api/control",
            data=json.dumps(values).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            return dict(json.loads(res.read()))


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgecastServer]:
    folder = tmp_path_factory.mktemp("agecast-serve")
    srv = AgecastServer(free_port(), folder / "serve.log", folder / "state")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _default_look(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that change the server's look put it back, whatever happens."""
    yield
    if "server" in request.fixturenames:
        srv: AgecastServer = request.getfixturevalue("server")
        if srv.proc is not None and srv.proc.poll() is None:
            srv.control(bypass=False, layout="side-by-side")


# Package scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it lives, and asyncio.run() in the tests that come after would refuse to start.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    pw = sync_playwright().start()
    # launch() gives every run a fresh temporary profile (user-data dir).
    b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()


@dataclass
class Watched:
    """Console warnings and page errors, so a test can assert the page never crashed."""

    errors: list[str] = field(default_factory=list)  # uncaught exceptions: a crashed page
    warnings: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)  # e.g. a refused reconnect

    def attach(self, page: Page) -> Page:
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)
        return page

    def _console(self, msg: Any) -> None:
        if msg.type == "warning":
            self.warnings.append(msg.text)
        elif msg.type == "error":
            self.console_errors.append(msg.text)


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def page(browser: Browser, watched: Watched) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    p = watched.attach(context.new_page())
    p.set_default_timeout(20_000)
    yield p
    context.close()
    assert not watched.errors, f"uncaught errors in the page: {watched.errors}"


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


# --- helpers the tests share -------------------------------------------------------------


def wait_painting(page: Page, more_than: int = 5, timeout_ms: int = 20_000) -> None:
    page.wait_for_function(
        f"window.agecast && window.agecast.painted > {more_than}", timeout=timeout_ms
    )


def grab_canvas(page: Page, selector: str = "#video") -> np.ndarray:
    """The monitor canvas's own pixels (HWC uint8 RGB), as painted — no page scaling."""
    from PIL import Image

    url = page.eval_on_selector(selector, "c => c.toDataURL('image/png')")
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def expected_frame(n: int) -> np.ndarray:
    """The raw frame ``n`` the server's testpattern source drew."""
    from agecast.sources import open_source

    with open_source(SOURCE, live=False) as source:
        return np.asarray(source.draw(n))
