"""A camera's RTSP stream (``rtsp_out``): the aged or side-by-side picture (``program_kind``)
as H.264 that monitors, hardware decoders and recorders pull at ``rtsp://HOST:PORT/<camera>``
(:mod:`agecast.media.rtsp`), with a viewer link's token. Camera N (from 0) listens on the
given port + N. Fed from the encode side through an
:class:`~agecast.live.outputs.OutputFeed` (its own drops, never the live path's); nothing is
encoded while nobody is watching. With ``program_out`` on too, it sends the program stream's
own H.264 (one encode for both: the same picture, label and rate) instead of encoding again."""

from __future__ import annotations

import logging

from agecast.compose.marks import Marker
from agecast.errors import SettingsError
from agecast.live.outputs import OutputFeed, picture_of
from agecast.live.program_out import ProgramOut
from agecast.media.encoder import EncodedPicture, H264Encoder
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
        program: ProgramOut | None = None,
    ) -> None:
        super().__init__(f"RTSP out {camera}")
        self.kind = kind
        self.burn = label
        self._marker = Marker()
        self._program = program
        self._encoder = program.encoder if program is not None else H264Encoder(fps)
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
        if program is not None:
            program.also.append(self._deliver)
        log.info("RTSP out: %s (a viewer link's token: ?token=…)", self.url)

    def offer(self, output: Output) -> None:
        if self._program is None:  # else the program stream hands its H.264 over (_deliver)
            super().offer(output)

    def _deliver(self, encoded: EncodedPicture, output: Output) -> None:
        """The program stream's encoded picture, on its thread."""
        if self._server.playing() and self._forward(encoded, output):
            self._count_sent()

    def send(self, output: Output) -> bool:
        if not self._server.playing():
            return False  # nobody watching: nothing encoded
        picture = picture_of(output, self.kind)
        if self.burn:
            picture = picture.clone()
            self._marker.burn(picture, self.burn, "bottom-left")
        return self._forward(self._encoder.encode(picture), output)

    def _forward(self, encoded: EncodedPicture, output: Output) -> bool:
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
            "dropped": self.dropped if self._program is None else self._program.dropped,
            "encoder": self._encoder.encoder_name,
            "shares_encoder": self._program is not None,  # the program stream's H.264
        }

    def release(self) -> None:
        self._server.close()
