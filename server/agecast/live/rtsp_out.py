"""A camera's RTSP stream (``rtsp_out``): the aged or side-by-side picture (``program_kind``)
as H.264 that monitors, hardware decoders and recorders pull at ``rtsp://HOST:PORT/<camera>``
(:mod:`agecast.media.rtsp`), with a viewer link's token. Camera N (from 0) listens on the
given port + N. Fed from the encode side through an
:class:`~agecast.live.outputs.OutputFeed` (its own drops, never the live path's); nothing is
encoded while nobody is watching."""

from __future__ import annotations

import logging

from agecast.compose.marks import Marker
from agecast.errors import SettingsError
from agecast.live.outputs import OutputFeed, picture_of
from agecast.media.encoder import H264Encoder
from agecast.media.rtsp import Gate, RtspServer
from agecast.pipeline.runner import Output

log = logging.getLogger(__name__)


def listen_address(spec: str, index: int) -> tuple[str, int]:
    """(host, port) of ``HOST:PORT`` (or ``PORT``: all interfaces) for camera ``index``."""
    host, sep, port = spec.rpartition(":")
    if not sep:
        host, port = "0.0.0.0", spec
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or not 0 < int(port) + index < 65536:
        raise SettingsError(f"rtsp_out {spec!r}: give HOST:PORT to listen on, e.g. 0.0.0.0:8554")
    return host, int(port) + index


class RtspOut(OutputFeed):
    def __init__(
        self,
        listen: tuple[str, int],
        kind: str,
        fps: float,
        *,
        camera: str,
        gate: Gate,
        label: str | None = None,
    ) -> None:
        super().__init__(f"RTSP out {camera}")
        self.kind = kind
        self.burn = label
        self._marker = Marker()
        self._encoder = H264Encoder(fps)
        try:
            self._server = RtspServer(
                listen[0], listen[1], name=camera, gate=gate, fps=fps,
                on_join=self._encoder.request_key_frame,
            )  # fmt: skip
        except OSError as exc:
            raise SettingsError(
                f"rtsp_out: cannot listen on {listen[0]}:{listen[1]} ({exc.strerror or exc}): "
                "choose another port (camera N listens on the port + N)"
            ) from exc
        self.url = f"rtsp://{listen[0]}:{self._server.port}/{camera}"
        self.sent = 0
        self.sent_bytes = 0
        self.start()
        log.info("RTSP out: %s (a viewer link's token: ?token=…)", self.url)

    def send(self, output: Output) -> bool:
        if not self._server.playing():
            return False  # nobody watching: nothing encoded
        picture = picture_of(output, self.kind)
        if self.burn:
            picture = picture.clone()
            self._marker.burn(picture, self.burn, "bottom-left")
        encoded = self._encoder.encode(picture)
        if not encoded.data:
            return False
        self._server.send(encoded.data, encoded.key, output.wall_ns)
        self.sent += 1
        self.sent_bytes += len(encoded.data)
        return True

    def status(self) -> dict[str, object]:
        return {
            "url": self.url,
            "kind": self.kind,
            "clients": self._server.sessions(),
            "sent": self.sent,
            "fps": self.fps(),
            "bytes": self.sent_bytes,
            "dropped": self.dropped,
            "encoder": self._encoder.encoder_name,
        }

    def release(self) -> None:
        self._server.close()
