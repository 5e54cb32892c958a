"""A camera's input transform runs on every picture before anything else sees it: the raw side,
the faces and the aged side all come from the transformed picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agecast.compose.lut import AWG3_TO_709, LOGC3
from agecast.errors import SettingsError
from agecast.pipeline.build import build
from agecast.settings import Settings
from agecast.sources import open_source
from tests.compose.test_lut import write_cube

from .conftest import render_outputs

SOURCE = "testpattern:160x120@30"


def test_the_pipeline_sees_the_transformed_picture(tmp_path: Path) -> None:
    cube = write_cube(tmp_path / "invert.cube", 5, lambda rgb: 1.0 - rgb)
    settings = Settings.load(
        source=SOURCE, identity="testpattern", loop=False, input_transform=str(cube)
    )
    built, outputs = render_outputs(settings, limit=3)
    assert len(outputs) == 3
    with open_source(SOURCE, live=False) as source:
        for output in outputs:
            drawn = np.asarray(source.draw(output.index)).astype(int)  # type: ignore[attr-defined]
            raw = output.raw.numpy().astype(int)
            assert np.abs(raw - (255 - drawn)).max() <= 1
    assert "input_transform" in built.pipeline.timings.summary()


def test_a_bad_lut_stops_the_build_before_anything_opens(tmp_path: Path) -> None:
    bad = tmp_path / "show.cube"
    bad.write_text("LUT_3D_SIZE 3\n0 0 0\n")
    settings = Settings.load(source=SOURCE, identity="testpattern", input_transform=str(bad))
    with pytest.raises(SettingsError, match="show.cube: 1 entries for LUT_3D_SIZE 3"):
        build(settings, mode="render")


# ARRI's published LogC3 (EI 800) encoding and AWG3 → Rec.709 matrix, run backwards to make a
# log clip of the demo as an ALEXA would have recorded it
_CUT, _A, _B, _C, _D, _E, _F = LOGC3


def logc3_encode(rgb: np.ndarray) -> np.ndarray:
    v = rgb / 255.0
    linear = np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))
    awg = linear @ np.linalg.inv(np.array(AWG3_TO_709)).T
    log = np.where(awg > _CUT, _C * np.log10(np.maximum(_A * awg + _B, 1e-9)) + _D, _E * awg + _F)
    return np.clip(np.round(log * 255), 0, 255).astype(np.uint8)


def test_a_logc3_clip_is_worked_on_as_rec709(tmp_path: Path) -> None:
    import torch

    from agecast.media.writer import Mp4Writer

    clip = tmp_path / "alexa-logc3.mp4"
    writer = Mp4Writer(clip, 30.0, crf=12)
    originals = []
    with open_source("demo", live=False) as demo:
        for _ in range(8):
            frame = demo.read()
            assert frame is not None
            originals.append(frame.image.numpy())
            writer.write(torch.from_numpy(logc3_encode(originals[-1])))
    writer.close()

    def run(transform: str | None) -> list:  # type: ignore[type-arg]
        settings = Settings.load(
            source=str(clip), identity="demo-aged", loop=False, input_transform=transform
        )
        return render_outputs(settings)[1]

    seen_log, seen_709 = run(None), run("logc3")
    for log_out, out, original in zip(seen_log, seen_709, originals, strict=True):
        raw = out.raw.numpy().astype(int)
        # what the faces and the model get is the demo as filmed, not its flat log picture
        assert np.abs(raw - original).mean() < 4 < np.abs(log_out.raw.numpy() - original).mean()
        assert out.faces == 1
        # both sides in the same encoding: outside the face, aged is raw
        aged = out.aged.numpy().astype(int)
        changed = np.abs(aged - raw).max(axis=2) > 8
        assert 0.001 < changed.mean() < 0.2
