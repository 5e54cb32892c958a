import json
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import SourceError
from agecast.pipeline.bench import bench
from agecast.pipeline.render import render
from agecast.settings import Settings


def _count_frames(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        n = sum(1 for _ in container.decode(stream))
        return n, stream.codec_context.width, stream.codec_context.height


def test_render_writes_exactly_the_frames_it_read(face_clip: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    settings = Settings.load(source=str(face_clip), identity="testpattern", loop=False)
    result = render(settings, out, report=report)
    assert result["frames_read"] == result["frames_written"] == 24
    assert _count_frames(out) == (24, 2560, 720)
    saved = json.loads(report.read_text())
    assert saved["frames_written"] == 24 and saved["fx"]["on"] == 24
    assert {"detect", "align", "infer", "paste", "compose"} <= set(saved["stages_ms"])


def test_render_aged_layout_and_frame_limit(face_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "aged.mp4"
    settings = Settings.load(
        source=str(face_clip), identity="testpattern", layout="aged", loop=False
    )
    result = render(settings, out, limit=10)
    assert result["frames_written"] == 10
    assert _count_frames(out) == (10, 1280, 720)


def test_render_bad_source_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings.load(source=str(tmp_path / "missing.mp4"), identity="testpattern")
    with pytest.raises(SourceError, match=r"missing\.mp4"):
        render(settings, tmp_path / "x.mp4")


BENCH_FIELDS = {
    "command", "mode", "source", "identity", "backend", "device", "seconds", "frames_in",
    "frames_out", "fps_in", "fps_out", "dropped", "fx", "fx_errors", "stages_ms",
    "frame_to_output_ms", "landmark_jitter_px", "peak_rss_mb", "machine",
    "frame_to_packet_ms", "encoder", "copies", "gpu_peak_memory_mb",
}  # fmt: skip


def test_bench_reports_every_field(face_clip: Path) -> None:
    settings = Settings.load(source=str(face_clip), identity="testpattern")
    result = bench(settings, seconds=1.0, live=True, warmup=0.3)
    assert set(result) >= BENCH_FIELDS
    assert result["frames_out"] > 0 and result["fps_out"] > 0
    for stats in (*result["stages_ms"].values(), result["frame_to_output_ms"]):
        assert {"p50", "p95", "p99"} <= set(stats)
    jitter = result["landmark_jitter_px"]
    assert jitter["smoothed_px"] <= jitter["raw_px"]
    # every output was encoded, after it was output; nothing crossed a bus on the CPU
    packets = result["frame_to_packet_ms"]
    assert packets["count"] >= result["frames_out"] - 1
    assert packets["p50"] >= result["frame_to_output_ms"]["p50"]
    assert result["encoder"] == {"asked": "auto", "name": "libx264", "fallback": None} or (
        result["device"] != "cpu"
    )
    assert result["copies"]["h2d_per_frame"] == result["copies"]["d2h_per_frame"] == 0.0
    json.dumps(result)  # serialisable as is


def test_bench_resolution_and_fps_pick_a_generated_source(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    runner = CliRunner()
    args = ["bench", "--identity", "testpattern", "--seconds", "0.5", "--warmup", "0.2"]
    result = runner.invoke(
        app, [*args, "--resolution", "192x108", "--fps", "15", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["source"]["uri"] == "testpattern:192x108@15" and data["frames_out"] > 0
    assert "frame→packet (libx264)" in result.output
    result = runner.invoke(app, [*args, "--resolution", "fullhd"])
    assert result.exit_code != 0 and "give WxH" in result.output


def test_bench_max_loops_a_short_file_to_fill_the_time_asked(face_clip: Path) -> None:
    settings = Settings.load(source=str(face_clip), identity="testpattern")  # 24 frames
    result = bench(settings, seconds=1.5, live=False, warmup=0.2, encode=False)
    assert result["mode"] == "max" and not result["ended_early"]
    assert result["seconds"] >= 1.4 and result["frames_out"] > 24  # past the file's end
    assert result["encode"] is False and "frame_to_packet_ms" not in result
    assert result["argv"] and {"before", "after"} <= set(result["load_average"])


def test_a_bench_cut_short_by_its_source_says_so(face_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.json"
    args = ["bench", "--source", str(face_clip), "--identity", "testpattern", "--no-loop"]
    result = CliRunner().invoke(
        app, [*args, "--seconds", "5", "--warmup", "0", "--json", str(out)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["ended_early"] is True and data["requested_s"] == 5.0
    assert data["seconds"] < 3.0 and data["frames_out"] <= 24  # 24 frames at 30 fps
    assert "warning: the source ended before the end" in result.output
    assert f"cover {data['seconds']} s" in result.output
