"""Prometheus text exposition of the live status (no client library needed)."""

from __future__ import annotations

from typing import Any


def _line(name: str, value: float, **labels: str) -> str:
    label = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{label}}} {value}" if label else f"{name} {value}"


def render_metrics(status: dict[str, Any]) -> str:
    lines = [
        "# HELP agecast_frames_in_total Frames read from the source since start or reset.",
        "# TYPE agecast_frames_in_total counter",
        _line("agecast_frames_in_total", status["frames_in"]),
        "# TYPE agecast_frames_out_total counter",
        _line("agecast_frames_out_total", status["frames_out"]),
        "# HELP agecast_dropped_total Frames dropped at a one-slot hand-off.",
        "# TYPE agecast_dropped_total counter",
        *(_line("agecast_dropped_total", n, slot=slot) for slot, n in status["dropped"].items()),
        "# TYPE agecast_fx_errors_total counter",
        _line("agecast_fx_errors_total", status["fx_errors"]),
        "# TYPE agecast_viewers gauge",
        _line("agecast_viewers", status["viewers"]),
        "# TYPE agecast_fps gauge",
        _line("agecast_fps", status["fps_in"], side="in"),
        _line("agecast_fps", status["fps_out"], side="out"),
        "# HELP agecast_stage_ms Per-stage processing time in milliseconds.",
        "# TYPE agecast_stage_ms gauge",
    ]
    for stage, stats in status["stages_ms"].items():
        for q in ("p50", "p95", "p99"):
            lines.append(_line("agecast_stage_ms", stats.get(q, 0.0), stage=stage, quantile=q))
    for name in ("server_latency_ms", "glass_to_glass_ms"):
        lines.append(f"# TYPE agecast_{name} gauge")
        for q in ("p50", "p95"):
            lines.append(_line(f"agecast_{name}", status[name][q], quantile=q))
    watchdog = status.get("watchdog") or {}
    lines.append("# HELP agecast_device_stalled 1 while the device thread is stuck on a frame.")
    lines.append("# TYPE agecast_device_stalled gauge")
    lines.append(_line("agecast_device_stalled", 1 if watchdog.get("stalled") else 0))
    lines.append("# TYPE agecast_device_stalls_total counter")
    lines.append(_line("agecast_device_stalls_total", watchdog.get("stalls", 0)))
    lines.append("# TYPE agecast_source_live gauge")
    lines.append(_line("agecast_source_live", 1 if status["source"]["state"] == "live" else 0))
    return "\n".join(lines) + "\n"
