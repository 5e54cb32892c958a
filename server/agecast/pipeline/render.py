"""Offline render: every frame of a source through the pipeline into an H.264 MP4."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from agecast.errors import OutputError
from agecast.media.writer import Mp4Writer
from agecast.outfiles import atomic_output, check_writable, write_text_atomic
from agecast.pipeline.build import build
from agecast.settings import Settings

log = logging.getLogger(__name__)


def render(
    settings: Settings,
    out: Path,
    *,
    report: Path | None = None,
    limit: int | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Render ``settings.source`` to ``out``; returns (and optionally writes) the report.

    ``progress`` is called with the number of frames written so far (for a progress bar).
    """
    check_writable(out, "--out")  # before minutes of rendering, not after
    if report is not None:
        check_writable(report, "--report")
    built = build(settings, mode="render")
    pipeline = built.pipeline
    pipeline.limit = limit
    try:
        pipeline.start()
    except BaseException:
        built.close()
        raise
    with atomic_output(out) as partial:  # a failed render leaves no half file at ``out``
        writer = Mp4Writer(partial, pipeline.source.fps)
        try:
            for output in pipeline.outputs():
                if output is None:
                    continue
                writer.write(output.picture)
                if progress is not None:
                    progress(writer.frames)
        finally:
            writer.close()
            built.close()
        if pipeline.error is not None:
            raise pipeline.error
        if writer.frames == 0:
            raise OutputError(f"{settings.source} gave no frames: nothing written to {out}")
    result: dict[str, Any] = {
        "command": "render",
        "out": str(out),
        "identity": built.identity.manifest.id,
        "backend": built.backend.name,
        "device": str(built.device),
        "layout": settings.layout,
        "fps": pipeline.source.fps,
        "frames_read": pipeline.frames_in,
        "frames_written": writer.frames,
        **pipeline.stats(),
    }
    if report is not None:
        write_text_atomic(report, json.dumps(result, indent=2) + "\n")
    return result
