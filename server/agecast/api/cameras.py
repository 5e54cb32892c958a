"""The cameras one server runs: a live service each, by name; the first is the default.

Requests pick a camera with ``?camera=NAME`` (``/ws/monitor``, ``/ws/control``, ``/api/status``,
takes and presets) or ``"camera"`` in ``POST /api/control``; without one they act on the first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from agecast.errors import UnknownCamera
from agecast.live.service import LiveService


class LiveCameras:
    """The live services by camera name, in the configured order."""

    def __init__(self) -> None:
        self._services: dict[str, LiveService] = {}

    def set(self, services: Sequence[LiveService]) -> None:
        self._services = {service.name: service for service in services}

    @property
    def names(self) -> list[str]:
        return list(self._services)

    def __iter__(self) -> Iterator[LiveService]:
        return iter(self._services.values())

    def __len__(self) -> int:
        return len(self._services)

    def get(self, name: str | None = None) -> LiveService:
        """The camera called ``name``; the first when ``name`` is None or empty."""
        if not name:
            return next(iter(self._services.values()))
        service = self._services.get(name)
        if service is None:
            raise UnknownCamera(
                f"no camera {name!r} here: this server runs {', '.join(self.names)} "
                "(pick one with ?camera=NAME)"
            )
        return service

    def status(self, name: str | None = None) -> dict[str, Any]:
        """The camera's status (the first's by default) and a summary of every camera."""
        chosen = self.get(name)
        statuses = [service.status() for service in self]
        mine = next(s for s in statuses if s["camera"] == chosen.name)
        return {**mine, "cameras": [summary(s) for s in statuses]}

    def statuses(self) -> list[dict[str, Any]]:
        return [service.status() for service in self]

    def to_record(self, chosen: str | None, label: str | None) -> LiveService:
        """The camera a take records: the chosen one (``?camera=``), else the one the take's
        camera label names, else the first."""
        if chosen or not label or label not in self._services:
            return self.get(chosen)
        return self._services[label]

    def to_stop(self, chosen: str | None) -> LiveService:
        """The camera whose take to stop: the chosen one, else the first that records."""
        if chosen:
            return self.get(chosen)
        recording = [s for s in self if s.recorder is not None and s.recorder.active]
        return recording[0] if recording else self.get()


def summary(status: dict[str, Any]) -> dict[str, Any]:
    """One camera's entry in ``status["cameras"]``: what a picker or a wall of cameras shows."""
    recording = status.get("recording")
    return {
        "name": status["camera"],
        "source": status["source"]["uri"],
        "state": status["source"]["state"],
        "fx": status["fx"],
        "identity": status["identity"]["id"],
        "fps_in": status["fps_in"],
        "fps_out": status["fps_out"],
        "frames_out": status["frames_out"],
        "dropped": status["dropped"],
        "frame_to_output_ms": status["frame_to_output_ms"],
        "server_latency_ms": status["server_latency_ms"],
        "viewers": status["viewers"],
        "width": status["width"],
        "height": status["height"],
        "recording": recording.get("take") if recording and recording.get("recording") else None,
        "error": status["error"],
    }
