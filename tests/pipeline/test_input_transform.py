"""A camera's input transform runs on every picture before anything else sees it: the raw side,
the faces and the aged side all come from the transformed picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agecast.errors import SettingsError
from agecast.pipeline.build import build
from agecast.settings import Settings
from agecast.sources import open_source
from tests.compose.test_lut import write_cube

SOURCE = "testpattern:160x120@30"


def test_the_pipeline_sees_the_transformed_picture(tmp_path: Path) -> None:
    cube = write_cube(tmp_path / "invert.cube", 5, lambda rgb: 1.0 - rgb)
    settings = Settings.load(
        source=SOURCE, identity="testpattern", loop=False, input_transform=str(cube)
    )
    built = build(settings, mode="render")
    built.pipeline.limit = 3
    built.pipeline.start()
    try:
        outputs = [o for o in built.pipeline.outputs() if o is not None]
    finally:
        built.close()
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
