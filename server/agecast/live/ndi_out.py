"""A camera's pictures as NDI sources for the video-assist cart (QTAKE, vMix, OBS …).

Each camera publishes the kinds the ``ndi_out`` setting names, as ``<ndi_name> <camera>
<kind>``: ``aged``, ``raw`` and ``side-by-side``, fed from the encode side through an
:class:`~agecast.live.outputs.OutputFeed` (their own drops, never the live path's).

The outputs of one camera are frame-locked: each picture of a frame goes out with the same NDI
timecode (the frame's capture time, NDI's 100 ns units) and the same metadata,
``<agecast camera=… frame=… timecode=…/>`` (the SMPTE timecode the frame's take would get,
:class:`agecast.takes.recorder.Timecoder`). The AI mark is in the aged picture when the look
has it on; ``ndi_label`` is burnt into every picture, as a viewer link's label is.

An output nobody receives costs nothing: NDI compresses every picture it is given (SpeedHQ,
≈ 3 ms of CPU per 720p picture here) whether or not a receiver is connected, so a frame of an
output with no receiver is not composed, copied or sent (counted as ``unwatched``); the first
receiver to connect gets the next frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from xml.sax.saxutils import escape

from agecast.compose.marks import Marker
from agecast.live.outputs import OutputFeed, picture_of
from agecast.media import ndi
from agecast.pipeline.runner import Output
from agecast.pipeline.transfer import to_host
from agecast.takes.recorder import Timecoder, source_timecode

log = logging.getLogger(__name__)


@dataclass
class OutputCount:
    name: str
    sent: int = 0
    receivers: int = 0
    unwatched: int = 0  # frames not sent: no receiver was connected


class NdiOutputs(OutputFeed):
    """The NDI sources of one camera."""

    def __init__(
        self,
        camera: str,
        kinds: list[str],
        *,
        prefix: str,
        fps: float,
        source_uri: str,
        label: str | None = None,
    ) -> None:
        super().__init__(f"NDI out {camera}")
        self.camera = camera
        self.burn = label
        self._timecoder = Timecoder(fps, source_timecode(source_uri))
        self._senders = {k: ndi.NdiSender(f"{prefix} {camera} {k}", fps) for k in kinds}
        self.counts = {k: OutputCount(s.name) for k, s in self._senders.items()}
        self._marker = Marker()
        self.start()
        log.info("NDI out: %s", ", ".join(c.name for c in self.counts.values()))

    def send(self, output: Output) -> bool:
        timecode = self._timecoder(output.wall_ns, output.pts_s)
        ndi_time = output.wall_ns // 100  # the same for every output of this frame
        camera = escape(self.camera, {'"': "&quot;"})
        metadata = f'<agecast camera="{camera}" frame="{output.index}" timecode="{timecode}"/>'
        sent = False
        for kind, sender in self._senders.items():
            count = self.counts[kind]
            count.receivers = sender.connections()
            if not count.receivers:
                count.unwatched += 1
                continue
            picture = picture_of(output, kind)
            if self.burn:
                picture = picture.clone()
                self._marker.burn(picture, self.burn, "bottom-left")
            sender.send(to_host(picture).numpy(), timecode_100ns=ndi_time, metadata=metadata)
            count.sent += 1
            sent = True
        return sent

    def status(self) -> dict[str, object]:
        """Each output's NDI name, receivers connected, pictures sent and frames not sent for
        want of a receiver; the pictures replaced before they were sent (``dropped``: NDI's
        own, never the live path's)."""
        outputs = [
            {
                "kind": kind,
                "name": c.name,
                "receivers": c.receivers,
                "sent": c.sent,
                "unwatched": c.unwatched,
            }
            for kind, c in self.counts.items()
        ]
        return {"outputs": outputs, "fps": self.fps(), "dropped": self.dropped}

    def release(self) -> None:
        for sender in self._senders.values():
            sender.close()
