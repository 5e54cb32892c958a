"""``ndi://SOURCE NAME``: a camera the cart publishes over NDI, behind the same reconnect,
timeout and no-signal handling as every live feed (:mod:`agecast.sources.reconnect`).

Each frame's ``pts_s`` is the sender's timecode as seconds since local midnight, so a take
recorded from it is stamped with the sender's time of day (``takes.recorder.source_timecode``)
and its frames keep the sender's spacing.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from urllib.parse import unquote

import torch

from agecast.errors import SourceError
from agecast.media import ndi
from agecast.sources.base import Decoded, sane_fps
from agecast.sources.reconnect import ReconnectingSource

NDI_SCHEME = "ndi"


def source_name(uri: str) -> str:
    """The NDI source an ``ndi://`` URI names ("MACHINE (NAME)" or just NAME)."""
    name = unquote(uri[len(NDI_SCHEME) + 3 :] if uri.startswith(NDI_SCHEME + "://") else "")
    if not name.strip():
        raise SourceError(
            "ndi:// needs a source name, e.g. 'ndi://CART (CAM A)' or 'ndi://CAM A' "
            "('agecast sources ndi' lists what this machine sees)"
        )
    return name.strip()


def seconds_of_day(posix_s: float) -> float:
    """Seconds since this machine's local midnight at the instant ``posix_s``."""
    moment = datetime.fromtimestamp(posix_s)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return (moment - midnight).total_seconds()


class NdiReader:
    """One connection (a FrameReader): the constructor waits for the source and its first
    picture, so the rate it reports is the sender's."""

    def __init__(self, name: str, *, open_timeout_s: float, read_timeout_s: float) -> None:
        self._rx = ndi.NdiReceiver(
            name, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s
        )
        try:
            self._first: ndi.Received | None = self._rx.next()
        except SourceError:
            self._rx.close()
            raise
        self.fps = sane_fps(self._rx.fps)

    def next(self) -> Decoded | None:
        got, self._first = self._first or self._rx.next(), None
        return Decoded(torch.from_numpy(got.rgb), seconds_of_day(got.timecode_s))

    def close(self) -> None:
        self._rx.close()


def ndi_source(
    uri: str, *, live: bool, open_timeout_s: float, read_timeout_s: float
) -> ReconnectingSource:
    """The NDI source ``uri`` names; not there yet, or gone, is NO_SIGNAL, not an error. A
    machine without NDI support is an error at once (no retry can fix it)."""
    name = source_name(uri)

    def preflight() -> None:
        why = ndi.missing()
        if why is not None:
            raise SourceError(f"{uri}: {why}")

    connect = partial(NdiReader, name, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)
    return ReconnectingSource(
        uri, connect, label=f"NDI {name!r}", live=live, open_timeout_s=open_timeout_s,
        preflight=preflight,
    )  # fmt: skip
