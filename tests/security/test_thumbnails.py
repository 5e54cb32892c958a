"""Attacks 11 and 12 on take thumbnails: asking for one over and over while a take records
made the server decode the growing file each time (a take dropped 41 frames); a viewer whose
link burns its label into every picture got thumbnails without it."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
from PIL import Image

from agecast.api.auth import COOKIE
from agecast.takes.player import THUMBNAIL
from tests.api.conftest import Running


def _record(server: Running, take: str) -> str:
    with server.client("operator") as operator:
        r = operator.post("/api/takes/record", json={"scene": "thumb", "take": take})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])


def _stop(server: Running) -> None:
    with server.client("operator") as operator:
        assert operator.post("/api/takes/stop").status_code == 200


def test_asking_for_a_recording_takes_thumbnail_over_and_over_decodes_it_once(
    server: Running,
) -> None:
    take_id = _record(server, "1")
    try:
        path = server.service.settings.resolved_takes_dir / take_id / THUMBNAIL
        made: set[int] = set()
        with server.client("viewer") as viewer:
            deadline = time.monotonic() + 20
            while len(made) == 0 and time.monotonic() < deadline:  # the first frames are in
                if viewer.get(f"/api/takes/{take_id}/thumbnail.jpg").status_code == 200:
                    made.add(path.stat().st_ino)
                time.sleep(0.1)
            for _ in range(20):  # the take grows between requests
                time.sleep(0.25)
                assert viewer.get(f"/api/takes/{take_id}/thumbnail.jpg").status_code == 200
                made.add(path.stat().st_ino)
        assert len(made) == 1, f"the thumbnail was made {len(made)} times"
    finally:
        _stop(server)


def test_a_labelled_links_thumbnails_carry_its_label(server: Running) -> None:
    take_id = _record(server, "2")
    time.sleep(1.0)
    _stop(server)
    link, _ = server.auth.links.create("viewer", label="LEAK-7", expires_s=60, burn_label=True)
    cookie = server.auth.sessions.issue(link)[0]
    url = f"{server.base}/api/takes/{take_id}/thumbnail.jpg"
    with server.client("viewer") as plain:
        unlabelled = plain.get(url)
    labelled = httpx.get(url, cookies={COOKIE: cookie})
    assert unlabelled.status_code == labelled.status_code == 200
    a = np.asarray(Image.open(io.BytesIO(unlabelled.content)).convert("L"), dtype=int)
    b = np.asarray(Image.open(io.BytesIO(labelled.content)).convert("L"), dtype=int)
    assert a.shape == b.shape
    h, w = a.shape
    corner = np.abs(a - b)[h // 2 :, : w // 2]
    assert (corner > 40).sum() > 50, "no label burnt into the labelled link's thumbnail"
