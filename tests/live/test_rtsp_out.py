"""RTSP out: a camera's aged picture pulled by FFmpeg's RTSP client (PyAV) over TCP and UDP, as
a hardware decoder or recorder takes it; only with a link's token, and a revoked link stops."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from agecast.api.auth import Auth, LinkGate
from agecast.errors import SettingsError
from agecast.live.service import LiveService
from agecast.settings import Settings
from agecast.sources import open_source
from agecast.sources.testpattern import read_counter

W, H = 320, 240
SOURCE = f"testpattern:{W}x{H}@30"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def auth(tmp_path: Path) -> Auth:
    return Auth.at(tmp_path / "state")


@pytest.fixture
def service(tmp_path: Path, auth: Auth) -> Iterator[LiveService]:
    settings = Settings.load(
        source=SOURCE,
        identity="testpattern",
        state_dir=tmp_path / "state",
        rtsp_out=f"127.0.0.1:{_free_port()}",
    )
    live = LiveService(settings)
    live.gate = LinkGate(auth, live.name)  # as `agecast serve` gives it
    live.start()
    yield live
    live.stop()


def _token(auth: Auth, label: str = "QTAKE", *, burn_label: bool = False) -> str:
    _, token = auth.links.create("viewer", label=label, burn_label=burn_label)
    return token


def _url(service: LiveService) -> str:
    return str(service.status()["rtsp"]["url"])


def _pictures(url: str, count: int, transport: str = "tcp") -> list[np.ndarray]:
    options = {"rtsp_transport": transport, "timeout": "5000000"}
    with av.open(url, options=options, timeout=10) as container:
        frames = container.decode(video=0)
        return [next(frames).to_ndarray(format="rgb24") for _ in range(count)]


def _is_the_aged_picture(picture: np.ndarray) -> None:
    n = read_counter(picture)
    with open_source(SOURCE, live=False) as raw_source:
        raw = np.asarray(raw_source.draw(n))  # type: ignore[attr-defined]
    diff = np.abs(picture.astype(int) - raw.astype(int)).max(axis=2)
    band = int(H * 0.78)
    assert (diff[:band] > 40).mean() > 0.002, "not the aged picture: no face changed"
    assert np.median(diff[band:]) <= 8  # the rest as it was, but for H.264


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_decoder_pulls_the_aged_picture(service: LiveService, auth: Auth, transport: str) -> None:
    url = f"{_url(service)}?token={_token(auth)}"
    pictures = _pictures(url, 20, transport)
    assert {p.shape for p in pictures} == {(H, W, 3)}
    numbers = [read_counter(p) for p in pictures]
    assert len(set(numbers)) > 10 and numbers == sorted(numbers), "not the live frames in order"
    _is_the_aged_picture(pictures[-1])
    status = service.status()["rtsp"]
    assert status["sent"] >= 20 and status["bytes"] > 0 and status["kind"] == "aged"
    from agecast.api.metrics import render_metrics

    metrics = render_metrics([service.status()])
    assert re.search(r'^agecast_stream_sent_total\{stream="rtsp"\} [1-9]', metrics, re.M)
    assert re.search(r"^agecast_rtsp_clients [01]$", metrics, re.M)


def test_the_token_as_a_password_and_in_the_audit(service: LiveService, auth: Auth) -> None:
    url = _url(service).replace("rtsp://", f"rtsp://qtake:{_token(auth, label='cart B')}@")
    _is_the_aged_picture(_pictures(url, 5)[-1])
    audit = auth.audit.path.read_text()
    assert '"event": "rtsp_play"' in audit and '"by": "cart B"' in audit


def test_no_picture_without_a_usable_link(service: LiveService, auth: Auth) -> None:
    revoked = _token(auth, label="gone")
    auth.links.revoke("gone")
    burnt = _token(auth, label="Director", burn_label=True)
    for url in (
        _url(service),  # no token: asked for one, none given
        f"{_url(service)}?token=not-a-token",
        f"{_url(service)}?token={revoked}",
        f"{_url(service)}?token={burnt}",  # one picture for all: a label cannot be burnt in
    ):
        with pytest.raises(av.error.FFmpegError):
            _pictures(url, 1)
    assert service.status()["rtsp"]["clients"] == []
    assert service.status()["rtsp"]["sent"] == 0  # nobody watched: nothing was encoded


def test_revoking_the_link_stops_the_stream(service: LiveService, auth: Auth) -> None:
    token = _token(auth, label="to revoke")
    options = {"rtsp_transport": "tcp", "timeout": "5000000"}
    with av.open(f"{_url(service)}?token={token}", options=options, timeout=10) as container:
        frames = container.decode(video=0)
        next(frames)
        clients = service.status()["rtsp"]["clients"]
        assert [c["who"] for c in clients] == ["to revoke"]
        auth.links.revoke("to revoke")
        revoked_at = time.monotonic()
        with pytest.raises((StopIteration, av.error.FFmpegError)):
            for _ in range(30 * 30):  # far more than arrive before the stream is cut
                next(frames)
        assert time.monotonic() - revoked_at < 10
    assert service.status()["rtsp"]["clients"] == []


def test_agecast_reads_its_own_rtsp_stream(service: LiveService, auth: Auth) -> None:
    """Another agecast (or any RTSP source) can take the aged picture as its camera."""
    url = f"{_url(service)}?token={_token(auth)}"
    with open_source(url, open_timeout_s=10) as rx:
        frames = [rx.read() for _ in range(10)]
    got = [f for f in frames if f is not None]
    assert got and tuple(got[-1].image.shape) == (H, W, 3)
    _is_the_aged_picture(got[-1].image.numpy())


def test_a_bad_address_or_a_missing_gate_says_so(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="rtsp_out"):
        Settings.load(rtsp_out="somewhere")
    settings = Settings.load(
        source=SOURCE, identity="testpattern", state_dir=tmp_path, rtsp_out="127.0.0.1:0"
    )
    live = LiveService(settings)
    try:
        with pytest.raises(SettingsError, match="agecast serve"):
            live.start()
    finally:
        live.stop()


def test_serve_lets_its_links_pull_the_stream(tmp_path: Path) -> None:
    """`agecast serve --rtsp-out`: the server's own links open its RTSP stream."""
    from agecast.api.auth import LinkStore
    from tests.e2e.conftest import AgecastServer, free_port

    port = _free_port()
    srv = AgecastServer(
        free_port(), tmp_path / "serve.log", tmp_path / "state", source=SOURCE,
        args=["--rtsp-out", f"127.0.0.1:{port}"],
    )  # fmt: skip
    srv.start()
    try:
        _, token = LinkStore(srv.state_dir).create("viewer", label="decoder")
        pictures = _pictures(f"rtsp://127.0.0.1:{port}/cam1?token={token}", 5)
        _is_the_aged_picture(pictures[-1])
    finally:
        srv.stop()


def test_with_the_program_stream_on_too_both_send_one_encode(
    tmp_path: Path, auth: Auth, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """program_out and rtsp_out carry the same picture: it is H.264-encoded once (the RTSP
    stream sends the program stream's packets), and a UDP decoder and an RTSP client both
    decode the live aged frames."""
    from agecast.media.encoder import H264Encoder

    encodes: dict[int, int] = {}  # encoder → pictures it encoded
    real_encode = H264Encoder.encode

    def counted_encode(self: H264Encoder, *args: object, **kwargs: object) -> object:
        encodes[id(self)] = encodes.get(id(self), 0) + 1
        return real_encode(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(H264Encoder, "encode", counted_encode)
    caplog.set_level(logging.INFO, logger="agecast.live.rtsp_out")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        udp = int(probe.getsockname()[1])
    settings = Settings.load(
        source=SOURCE,
        identity="testpattern",
        state_dir=tmp_path / "state",
        rtsp_out=f"127.0.0.1:{_free_port()}",
        program_out=f"udp://127.0.0.1:{udp}",
    )
    live = LiveService(settings)
    live.gate = LinkGate(auth, live.name)
    live.start()
    try:
        url = f"{_url(live)}?token={_token(auth)}"
        pictures = _pictures(url, 15)
        numbers = [read_counter(p) for p in pictures]
        assert len(set(numbers)) > 8 and numbers == sorted(numbers)
        _is_the_aged_picture(pictures[-1])
        with open_source(f"udp://127.0.0.1:{udp}", open_timeout_s=10) as rx:
            frame = rx.read()
        assert frame is not None
        _is_the_aged_picture(frame.image.numpy())
        status = live.status()
        program, rtsp = status["program"], status["rtsp"]
        assert rtsp["shares_encoder"] and rtsp["sent"] >= 15
        assert live.rtsp is not None and live.program is not None
        shared = live.program.encoder
        assert live.rtsp._encoder is shared  # one encoder for the camera's two streams
        # it encoded each program picture once, and the RTSP stream sent those packets
        assert program["sent"] <= encodes[id(shared)] <= live.program.sent + 1
        # its address is logged once, when it starts listening (not once a picture)
        said = [r for r in caplog.records if r.getMessage().startswith("RTSP out: rtsp://")]
        assert len(said) == 1
    finally:
        live.stop()
