"""Prometheus text exposition of the live status (no client library needed).

With several cameras every sample carries a ``camera`` label; one camera's are unlabelled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from agecast.frames import FxState
from agecast.live.status import FleetStatus


def _line(name: str, value: float, **labels: str) -> str:
    label = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{label}}} {value}" if label else f"{name} {value}"


def render_metrics(statuses: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """The metrics of one camera's status, or of several (a family's samples stay together)."""
    many = [statuses] if isinstance(statuses, dict) else list(statuses)
    cams = [({"camera": str(s["camera"])} if len(many) > 1 else {}, s) for s in many]

    def each(name: str, value: Callable[[dict[str, Any]], float], **labels: str) -> list[str]:
        return [_line(name, value(s), **cam, **labels) for cam, s in cams]

    lines = [
        "# HELP agecast_frames_in_total Frames read from the source since start or reset.",
        "# TYPE agecast_frames_in_total counter",
        *each("agecast_frames_in_total", lambda s: s["frames_in"]),
        "# TYPE agecast_frames_out_total counter",
        *each("agecast_frames_out_total", lambda s: s["frames_out"]),
        "# HELP agecast_dropped_total Frames dropped at a one-slot hand-off.",
        "# TYPE agecast_dropped_total counter",
        *(
            _line("agecast_dropped_total", n, **cam, slot=slot)
            for cam, s in cams
            for slot, n in s["dropped"].items()
        ),
        "# TYPE agecast_fx_errors_total counter",
        *each("agecast_fx_errors_total", lambda s: s["fx_errors"]),
        "# TYPE agecast_viewers gauge",
        *each("agecast_viewers", lambda s: s["viewers"]),
        "# TYPE agecast_fps gauge",
        *(
            _line("agecast_fps", s[f"fps_{side}"], **cam, side=side)
            for cam, s in cams
            for side in ("in", "out")
        ),
        "# HELP agecast_stage_ms Per-stage processing time in milliseconds.",
        "# TYPE agecast_stage_ms gauge",
    ]
    for cam, s in cams:
        for stage, stats in s["stages_ms"].items():
            for q in ("p50", "p95", "p99"):
                lines.append(
                    _line("agecast_stage_ms", stats.get(q, 0.0), **cam, stage=stage, quantile=q)
                )
    for name in ("server_latency_ms", "glass_to_glass_ms"):
        lines.append(f"# TYPE agecast_{name} gauge")
        for cam, s in cams:
            for q in ("p50", "p95"):
                lines.append(_line(f"agecast_{name}", s[name][q], **cam, quantile=q))

    def watchdog(s: dict[str, Any]) -> dict[str, Any]:
        return s.get("watchdog") or {}

    lines.append("# HELP agecast_device_stalled 1 while the device thread is stuck on a frame.")
    lines.append("# TYPE agecast_device_stalled gauge")
    lines += each("agecast_device_stalled", lambda s: 1 if watchdog(s).get("stalled") else 0)
    lines.append("# TYPE agecast_device_stalls_total counter")
    lines += each("agecast_device_stalls_total", lambda s: watchdog(s).get("stalls", 0))
    lines.append("# TYPE agecast_source_live gauge")
    lines += each("agecast_source_live", lambda s: 1 if s["source"]["state"] == "live" else 0)
    lines += _cast_metrics(cams)
    lines += _ndi_metrics(cams)
    lines += _triton_metrics(cams)
    lines += _stream_metrics(cams)
    return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    """One metric family: its HELP and TYPE lines, then its samples."""
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def _stream_metrics(cams: list[tuple[dict[str, str], dict[str, Any]]]) -> list[str]:
    """The program (UDP MPEG-TS) and RTSP streams: pictures sent and dropped; RTSP clients."""
    streams = [
        (cam, kind, s[kind]) for cam, s in cams for kind in ("program", "rtsp") if s.get(kind)
    ]
    if not streams:
        return []
    return [
        *_family(
            "agecast_stream_sent_total",
            "counter",
            "Pictures a program or RTSP stream has sent.",
            (
                _line("agecast_stream_sent_total", st["sent"], **cam, stream=k)
                for cam, k, st in streams
            ),
        ),
        *_family(
            "agecast_stream_dropped_total",
            "counter",
            "Pictures replaced before a program or RTSP stream sent them.",
            (
                _line("agecast_stream_dropped_total", st["dropped"], **cam, stream=k)
                for cam, k, st in streams
            ),
        ),
        *_family(
            "agecast_rtsp_clients",
            "gauge",
            "Clients playing a camera's RTSP stream.",
            (
                _line("agecast_rtsp_clients", len(st["clients"]), **cam)
                for cam, k, st in streams
                if k == "rtsp"
            ),
        ),
    ]


def _triton_metrics(cams: list[tuple[dict[str, str], dict[str, Any]]]) -> list[str]:
    """The identity's Triton link per camera (``--backend triton``): up or not, its calls by
    result (ok; failed — each a raw flagged frame —; skipped while Triton was down), timeouts."""
    links = [(cam, s["triton"]) for cam, s in cams if s.get("triton")]
    if not links:
        return []
    results = (("ok", "calls"), ("failed", "failures"), ("skipped", "skipped"))
    return [
        *_family(
            "agecast_triton_connected",
            "gauge",
            "1 while the identity's link to Triton is up.",
            (_line("agecast_triton_connected", int(t["connected"]), **cam) for cam, t in links),
        ),
        *_family(
            "agecast_triton_calls_total",
            "counter",
            "Identity calls to Triton by result.",
            (
                _line("agecast_triton_calls_total", t[key], **cam, result=result)
                for cam, t in links
                for result, key in results
            ),
        ),
        *_family(
            "agecast_triton_timeouts_total",
            "counter",
            "Identity calls to Triton that took longer than triton_timeout_ms.",
            (_line("agecast_triton_timeouts_total", t["timeouts"], **cam) for cam, t in links),
        ),
    ]


def _cast_metrics(cams: list[tuple[dict[str, str], dict[str, Any]]]) -> list[str]:
    """Faces by recognition (with a cast): now, since start, and what a recognition costs."""
    casts = [(cam, s["cast"]) for cam, s in cams if s.get("cast")]
    if not casts:
        return []

    def by_state(name: str, key: str) -> Iterator[str]:
        for cam, cast in casts:
            for state, n in cast[key].items():
                yield _line(name, n, **cam, recognition=state)

    return [
        *_family(
            "agecast_cast_faces",
            "gauge",
            "Faces in the last picture by recognition.",
            by_state("agecast_cast_faces", "faces"),
        ),
        *_family(
            "agecast_cast_faces_total",
            "counter",
            "Faces routed since start.",
            by_state("agecast_cast_faces_total", "faces_total"),
        ),
        *_family(
            "agecast_recognise_face_ms",
            "gauge",
            "Recognising one face (its own thread live).",
            (
                _line("agecast_recognise_face_ms", cast["recognise_face_ms"][q], **cam, quantile=q)
                for cam, cast in casts
                for q in ("p50", "p95")
            ),
        ),
    ]


def _ndi_metrics(cams: list[tuple[dict[str, str], dict[str, Any]]]) -> list[str]:
    """Each NDI output: receivers connected, pictures sent; a camera's NDI drops."""
    ndis = [(cam, s["ndi"]) for cam, s in cams if s.get("ndi")]

    def by_output(name: str, key: str) -> Iterator[str]:
        for cam, ndi in ndis:
            for out in ndi["outputs"]:
                yield _line(name, out[key], **cam, output=out["kind"])

    if not ndis:
        return []
    return [
        *_family(
            "agecast_ndi_receivers",
            "gauge",
            "Receivers connected to an NDI output.",
            by_output("agecast_ndi_receivers", "receivers"),
        ),
        *_family(
            "agecast_ndi_sent_total",
            "counter",
            "Pictures an NDI output has sent.",
            by_output("agecast_ndi_sent_total", "sent"),
        ),
        *_family(
            "agecast_ndi_dropped_total",
            "counter",
            "Pictures replaced before NDI sent them.",
            (_line("agecast_ndi_dropped_total", ndi["dropped"], **cam) for cam, ndi in ndis),
        ),
    ]


def fleet_metrics(fleet: FleetStatus) -> str:
    """The other nodes as this one sees them (this node's own cameras are above, unlabelled
    by node): up or not, seconds since each last answered, and each of their cameras' frame
    rates, source and FX state as it last said."""
    peers = [node for node in fleet.nodes if not node.here]
    cams = [(node.name, cam) for node in peers for cam in node.cameras]
    lines = [
        *_family(
            "agecast_fleet_node_up",
            "gauge",
            "1 while a fleet node answers this one.",
            (_line("agecast_fleet_node_up", int(n.reachable), node=n.name) for n in peers),
        ),
        *_family(
            "agecast_fleet_node_last_seen_seconds",
            "gauge",
            "Seconds since a fleet node last answered (-1: never).",
            (
                _line(
                    "agecast_fleet_node_last_seen_seconds",
                    -1 if n.last_seen_s is None else n.last_seen_s,
                    node=n.name,
                )
                for n in peers
            ),
        ),
        *_family(
            "agecast_fleet_camera_fps",
            "gauge",
            "A fleet node's camera's frame rate, as the node last said.",
            (
                _line("agecast_fleet_camera_fps", fps, node=node, camera=cam.name, side=side)
                for node, cam in cams
                for side, fps in (("in", cam.fps_in), ("out", cam.fps_out))
            ),
        ),
        *_family(
            "agecast_fleet_camera_live",
            "gauge",
            "1 while a fleet node's camera has a live source.",
            (
                _line(
                    "agecast_fleet_camera_live",
                    int(cam.state == "live"),
                    node=node,
                    camera=cam.name,
                )
                for node, cam in cams
            ),
        ),
        *_family(
            "agecast_fleet_camera_fx",
            "gauge",
            "1 for the FX state a fleet node's camera is in, 0 for the others.",
            (
                _line(
                    "agecast_fleet_camera_fx",
                    int(cam.fx == fx),
                    node=node,
                    camera=cam.name,
                    state=fx.value,
                )
                for node, cam in cams
                for fx in FxState
            ),
        ),
    ]
    return "\n".join(lines) + "\n"
