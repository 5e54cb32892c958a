"""A camera's pictures as NDI sources for the video-assist cart (QTAKE, vMix, OBS …).

Each camera publishes the kinds the ``ndi_out`` setting names, as ``<ndi_name> <camera>
<kind>``: ``aged``, ``raw`` and ``side-by-side``. They are fed from the encode side, after the
live path is done with a picture: :meth:`NdiOutputs.offer` only swaps a reference into a
one-picture slot (a picture still waiting there is replaced and counted as dropped), and a
thread of its own converts and sends. So a slow receiver or a slow conversion drops NDI
pictures, never live ones.

The outputs of one camera are frame-locked: each picture of a frame goes out with the same NDI
timecode (the frame's capture time, NDI's 100 ns units) and the same metadata,
``<agecast camera=… frame=… timecode=…/>`` (the SMPTE timecode the frame's take would get,
:class:`agecast.takes.recorder.Timecoder`). The AI mark is in the aged picture when the look
has it on; ``ndi_label`` is burnt into every picture, as a viewer link's label is.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from xml.sax.saxutils import escape

import torch

from agecast.compose.marks import Marker
from agecast.media import ndi
from agecast.pipeline.runner import Output
from agecast.pipeline.transfer import to_host
from agecast.takes.recorder import Timecoder, source_timecode

log = logging.getLogger(__name__)

KINDS = ("aged", "raw", "side-by-side")


@dataclass
class OutputCount:
    name: str
    sent: int = 0
    receivers: int = 0


def picture_of(output: Output, kind: str) -> torch.Tensor:
    """The HWC uint8 picture ``kind`` of ``output``."""
    if kind == "aged":
        return output.aged
    if kind == "raw":
        return output.raw
    if output.layout == "side-by-side":
        return output.picture
    return torch.cat([output.raw, output.aged], dim=1)


class NdiOutputs:
    """The NDI sources of one camera, and the thread that feeds them."""

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
        self.camera = camera
        self.label = label
        self.dropped = 0
        self._timecoder = Timecoder(fps, source_timecode(source_uri))
        self._senders = {k: ndi.NdiSender(f"{prefix} {camera} {k}", fps) for k in kinds}
        self.counts = {k: OutputCount(s.name) for k, s in self._senders.items()}
        self._marker = Marker()
        self._cond = threading.Condition()
        self._waiting: Output | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"ndi {camera}", daemon=True)
        self._thread.start()
        log.info("NDI out: %s", ", ".join(c.name for c in self.counts.values()))

    def offer(self, output: Output) -> None:
        """Hand ``output`` over; never waits (an unsent one still waiting is dropped)."""
        with self._cond:
            if self._waiting is not None:
                self.dropped += 1
            self._waiting = output
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._waiting is None and not self._closing:
                    self._cond.wait()
                output, self._waiting = self._waiting, None
                if self._closing or output is None:
                    return
            try:
                self._send(output)
            except Exception:  # a failing output must not end the others or the monitor
                log.exception("NDI out: frame %d of %s failed", output.index, self.camera)

    def _send(self, output: Output) -> None:
        timecode = self._timecoder(output.wall_ns, output.pts_s)
        ndi_time = output.wall_ns // 100  # the same for every output of this frame
        camera = escape(self.camera, {'"': "&quot;"})
        metadata = f'<agecast camera="{camera}" frame="{output.index}" timecode="{timecode}"/>'
        for kind, sender in self._senders.items():
            picture = picture_of(output, kind)
            if self.label:
                picture = picture.clone()
                self._marker.burn(picture, self.label, "bottom-left")
            sender.send(to_host(picture).numpy(), timecode_100ns=ndi_time, metadata=metadata)
            count = self.counts[kind]
            count.sent += 1
            count.receivers = sender.connections()

    def status(self) -> dict[str, object]:
        """Each output's NDI name, receivers connected and pictures sent; the pictures
        replaced before they were sent (``dropped``: NDI's own, never the live path's)."""
        outputs = [
            {"kind": kind, "name": c.name, "receivers": c.receivers, "sent": c.sent}
            for kind, c in self.counts.items()
        ]
        return {"outputs": outputs, "dropped": self.dropped}

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=2)
        for sender in self._senders.values():
            sender.close()
