"""A take with a cast: the sidecar says who was where with which identity; re-render replays it."""

from __future__ import annotations

import av
import numpy as np
import pytest

from agecast.cast.scene import LEADS
from agecast.takes.recorder import record
from agecast.takes.rerender import rerender
from agecast.takes.store import Take, TakeStore

from .conftest import IDENTITIES, Cast


@pytest.fixture(scope="module")
def take(cast: Cast, tmp_path_factory: pytest.TempPathFactory) -> Take:
    tmp = tmp_path_factory.mktemp("cast-take")
    settings = cast.settings(takes_dir=tmp / "takes", min_free_gb=0.01)
    info = record(settings, "cast", "1", seconds=3.0)
    return TakeStore(settings.resolved_takes_dir).get(info.id)


def routing(take: Take, version: str) -> dict[int, list[tuple[int, str | None]]]:
    """Frame → [(track, member)] as the sidecar recorded it."""
    out = {}
    for r in take.read_sidecar(version):
        if r["type"] == "frame" and "faces" in r:
            out[r["i"]] = sorted((f["track"], f["cast"]["member"]) for f in r["faces"])
    return out


def test_the_sidecar_records_who_was_where_and_their_identity(take: Take) -> None:
    records = take.read_sidecar("v1")
    start = records[0]
    members = {m["name"]: m for m in start["settings"]["members"]}
    assert {n: m["identity"] for n, m in members.items()} == IDENTITIES
    frames = routing(take, "v1")  # frames the live path aged (a busy box holds some back)
    assert len(frames) >= 5
    seen = {member for faces in frames.values() for _, member in faces}
    assert set(LEADS) <= seen
    assert any(member is None for faces in frames.values() for _, member in faces)  # passer-by
    given = {
        face["cast"]["member"]: face["cast"].get("identity")
        for r in records
        if r["type"] == "frame"
        for face in r.get("faces", [])
    }
    assert given == {**IDENTITIES, None: None}  # each face: who, and the identity it was given


def test_rerender_replays_the_recorded_routing(cast: Cast, take: Take) -> None:
    version = rerender(take, {}, cast.settings())
    live, again = routing(take, "v1"), routing(take, version)
    assert {i: again[i] for i in live} == live  # as recorded, frame by frame
    # a face of no member (the passer-by) is the plate in the re-render too
    frames = [r for r in take.read_sidecar(version) if r["type"] == "frame"]
    with av.open(str(take.aged_path(version))) as aged, av.open(str(take.raw_path)) as raw:
        pictures = zip(aged.decode(video=0), raw.decode(video=0), strict=False)
        checked = 0
        for record, (a, r) in zip(frames, pictures, strict=False):
            faces = record.get("faces", [])
            lead_boxes = [f["box"] for f in faces if f["cast"]["member"] is not None]
            for face in faces:
                if face["cast"]["member"] is not None or any(
                    overlaps(face["box"], box) for box in lead_boxes
                ):
                    continue
                x0, y0, x1, y1 = (int(v) for v in face["box"])
                w, h = x1 - x0, y1 - y0
                box = (slice(y0 + h // 5, y1 - h // 5), slice(x0 + w // 5, x1 - w // 5))
                a_px = a.to_ndarray(format="rgb24")[box].astype(int)
                r_px = r.to_ndarray(format="rgb24")[box].astype(int)
                assert np.abs(a_px - r_px).mean() < 2.0  # both encoded: equal up to compression
                checked += 1
    assert checked >= 1


def overlaps(a: list[float], b: list[float], grow: float = 0.4) -> bool:
    """Whether box ``a`` meets box ``b`` grown by ``grow`` of its size (a crop's reach)."""
    gw, gh = (b[2] - b[0]) * grow, (b[3] - b[1]) * grow
    return not (a[2] < b[0] - gw or a[0] > b[2] + gw or a[3] < b[1] - gh or a[1] > b[3] + gh)
