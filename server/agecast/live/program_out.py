"""A camera's program stream (``program_out``): the aged or side-by-side picture as H.264 in
MPEG-TS over UDP (:mod:`agecast.media.program`), fed from the encode side through an
:class:`~agecast.live.outputs.OutputFeed` (its own drops, never the live path's). With several
cameras, camera N (from 0) sends to the given port + N. Its H.264 is also what the camera's
RTSP stream sends when both are on (``also``): one encode for both."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from agecast.compose.marks import Marker
from agecast.live.outputs import OutputFeed, picture_of
from agecast.media.encoder import EncodedPicture, H264Encoder
from agecast.media.program import TsOutput
from agecast.pipeline.runner import Output
from agecast.redact import SourceURI, reveal


def camera_url(url: str, index: int) -> str:
    """``url`` for camera ``index``: its port + ``index`` (the first camera's is ``url``)."""
    if index == 0:
        return url
    parts = urlsplit(reveal(url))
    host = parts.hostname or ""
    port = (parts.port or 0) + index
    return SourceURI(urlunsplit(parts._replace(netloc=f"{host}:{port}")))


class ProgramOut(OutputFeed):
    def __init__(
        self, url: str, kind: str, fps: float, *, camera: str, label: str | None = None
    ) -> None:
        super().__init__(f"program out {camera}")
        self.kind = kind
        self.burn = label
        self._marker = Marker()
        self._ts = TsOutput(url, fps)
        self.sent = 0
        # other senders of the same pictures (the RTSP stream): each encoded picture goes to
        # them too, on this feed's thread
        self.also: list[Callable[[EncodedPicture, Output], None]] = []
        self.start()

    @property
    def encoder(self) -> H264Encoder:
        return self._ts.encoder

    def send(self, output: Output) -> bool:
        picture = picture_of(output, self.kind)
        if self.burn:
            picture = picture.clone()
            self._marker.burn(picture, self.burn, "bottom-left")
        encoded = self._ts.send(picture)
        self.sent += 1
        for deliver in self.also:
            deliver(encoded, output)
        return True

    def status(self) -> dict[str, object]:
        return {
            "url": str(SourceURI(self._ts.url)),
            "kind": self.kind,
            "sent": self.sent,
            "fps": self.fps(),
            "bytes": self._ts.sent_bytes,
            "dropped": self.dropped,
            "encoder": self._ts.encoder.encoder_name,
        }

    def release(self) -> None:
        self._ts.close()
