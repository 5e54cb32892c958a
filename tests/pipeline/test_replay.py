"""A re-render's frames carry what the take recorded (``Frame.replayed``): the FX switches look
and identity as the take did, there and then, and back again, without a frame failing."""

from __future__ import annotations

import dataclasses

from agecast.frames import Replayed
from agecast.pipeline.build import build
from agecast.pipeline.fx import FxState
from agecast.settings import Settings


def test_recorded_switches_are_done_again_frame_by_frame() -> None:
    built = build(Settings(source="demo", identity="testpattern"), mode="render")
    source = built.pipeline.source
    source.open()
    plan = {
        2: Replayed(None, {"blend": 0.5}, "demo-aged"),
        4: Replayed(None, {}, "testpattern"),  # back to where it started
        6: Replayed(None, {}, "demo-aged"),  # and again: the loaded one is used again
    }
    seen = []
    try:
        for _ in range(8):
            frame = source.read()
            assert frame is not None
            if frame.index in plan:
                frame = dataclasses.replace(frame, replayed=plan[frame.index])
            out = built.fx.process(frame)
            assert out.fx is FxState.ON, out.error
            seen.append((frame.index, built.fx.identity.manifest.id, built.fx.look.blend))
        pooled = dict(built.fx._pool)
    finally:
        source.close()
        built.close()
    ids = [i for _, i, _ in seen]
    assert ids[:2] == ["testpattern"] * 2 and ids[2:4] == ["demo-aged"] * 2
    assert ids[4:6] == ["testpattern"] * 2 and ids[6:] == ["demo-aged"] * 2
    assert all(blend == 0.5 for index, _, blend in seen if index >= 2)
    assert set(pooled) == {"demo-aged", "testpattern"}  # each loaded once, closed with the run
