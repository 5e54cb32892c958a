"""Re-rendering takes: the face region changes, the sidecar replays, exports keep timecode."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from agecast.errors import SettingsError, TakeError
from agecast.settings import Settings
from agecast.takes.recorder import record
from agecast.takes.rerender import export_take, parse_sets, rerender
from agecast.takes.store import Take, TakeStore

from .conftest import decode, psnr, take_settings
from .test_record import luma


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Take]:
    settings = take_settings(tmp_path_factory.mktemp("rerender"))
    info = record(settings, "rr", "1", seconds=1.0)
    return settings, TakeStore(settings.resolved_takes_dir).get(info.id)


def _face_mask(take: Take, version: str, shape: tuple[int, int], grow: int) -> list[np.ndarray]:
    """Per frame, True within ``grow`` px of a recorded face box."""
    masks = []
    for r in take.read_sidecar(version):
        if r["type"] != "frame":
            continue
        mask = np.zeros(shape, dtype=bool)
        for face in r.get("faces", []):  # a held frame of v1 has none
            x0, y0, x1, y1 = (round(v) for v in face["box"])
            mask[max(0, y0 - grow) : y1 + grow, max(0, x0 - grow) : x1 + grow] = True
        masks.append(mask)
    return masks


def test_unchanged_rerender_reproduces_the_recorded_aged_frames(
    recorded: tuple[Settings, Take],
) -> None:
    settings, take = recorded
    seen: list[tuple[int, int]] = []
    version = rerender(take, {}, settings, progress=lambda n, total, fps: seen.append((n, total)))
    assert version == "v2" and take.versions()[:2] == ["v1", "v2"]
    v1, v2 = decode(take.aged_path("v1")), decode(take.aged_path(version))
    assert len(v1) == len(v2) == take.info.frames
    frames1 = [r for r in take.read_sidecar("v1") if r["type"] == "frame"]
    frames2 = [r for r in take.read_sidecar(version) if r["type"] == "frame"]
    # a frame the live path dropped holds an earlier aged picture in v1; the re-render makes it
    own = [i for i, r in enumerate(frames1) if not r.get("held")]
    assert len(own) >= 5
    scores = [psnr(v1[i], v2[i]) for i in own]
    assert min(scores) > 40.0, scores  # the same faces, look and identity: codec rounding only
    assert seen[-1] == (len(v1), len(v1))
    assert [(r["i"], r["tc"]) for r in frames1] == [(r["i"], r["tc"]) for r in frames2]
    assert [frames1[i]["faces"] for i in own] == [frames2[i]["faces"] for i in own]
    assert all(r["faces"] for r in frames2)  # held frames: the faces found again
    render = json.loads(take.render_path(version).read_text())
    assert render["from"] == "v1" and render["settings"] == {} and render["status"] == "complete"
    assert render["identity"]["id"] == "testpattern" and render["faces_replayed"] == len(own)


def test_another_blend_changes_pixels_only_in_the_face_region(
    recorded: tuple[Settings, Take],
) -> None:
    settings, take = recorded
    full = rerender(take, {}, settings)
    faint = rerender(take, parse_sets(["blend=0.2"]), settings)
    a, b = decode(take.aged_path(full)), decode(take.aged_path(faint))
    raw = decode(take.raw_path)
    near = _face_mask(take, full, a[0].shape[:2], grow=24)  # faces of every frame
    changed_inside = changed_outside = 0
    for pa, pb, pr, mask in zip(a, b, raw, near, strict=True):
        diff = np.abs(luma(pa) - luma(pb)) > 12
        changed_inside += int(diff[mask].sum())
        changed_outside += int(diff[~mask].sum())
        # blend 0.2 sits between the raw face and the full replacement
        assert np.abs(luma(pb) - luma(pr))[mask].mean() < np.abs(luma(pa) - luma(pr))[mask].mean()
    assert changed_inside > 100 * len(a)
    assert changed_outside == 0
    sidecar = take.read_sidecar(faint)
    assert sidecar[0]["settings"]["blend"] == 0.2 and sidecar[0]["overrides"] == {"blend": 0.2}


def test_export_keeps_the_timecode(recorded: tuple[Settings, Take], tmp_path: Path) -> None:
    _, take = recorded
    tc = take.info.timecode_start
    for version, fmt, name, codec in (
        ("v1", "mp4", "a.mp4", "h264"),
        ("raw", "prores", "r.mov", "prores"),
    ):
        out = export_take(take, version, fmt, tmp_path / name)  # type: ignore[arg-type]
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == codec
            assert stream.metadata.get("timecode") == tc
            assert sum(1 for _ in container.decode(stream)) == take.info.frames
    with pytest.raises(TakeError, match="no version 'v9'"):
        export_take(take, "v9", "mp4", tmp_path / "x.mp4")


def test_bad_rerender_settings_are_refused(recorded: tuple[Settings, Take]) -> None:
    settings, take = recorded
    before = take.versions()
    with pytest.raises(SettingsError, match="cannot re-render with layout"):
        parse_sets(["layout=raw"])
    with pytest.raises(SettingsError, match="blend"):
        parse_sets(["blend=2"])
    with pytest.raises(SettingsError, match="key=value"):
        parse_sets(["blend"])
    assert parse_sets(["color_transfer=none", "age=none"]) == {
        "color_transfer": "none",
        "age": None,
    }
    with pytest.raises(SettingsError, match="no age control"):
        rerender(take, {"age": 40}, settings)
    with pytest.raises(TakeError, match="no version 'v7'"):
        rerender(take, {}, settings, from_version="v7")
    assert take.versions() == before  # a refused render makes no version
