"""The cast on the monitor, in real Chromium: a live server runs the cast:demo clip (two real
people enrolled as lead-a → testpattern and lead-b → demo-swap, a passer-by not enrolled)."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from agecast.api.auth import LinkStore
from tests.cast.conftest import IDENTITIES, enrol_leads

from .conftest import AgecastServer, Watched, free_port, grab_canvas, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TAG_GREEN = np.array([31, 209, 122])  # a recognised face's tag label (style.css .tag-label)
RECOGNISED_S = 60_000  # ms: the live server recognises both leads within this (a busy 2-core box)

# every visible tag: its name, its face box and its label, in page pixels
TAGS_JS = """() => [...document.querySelectorAll('#tags .tag')]
  .filter((t) => !t.hidden && !t.parentElement.hidden)
  .map((t) => {
    const r = t.getBoundingClientRect();
    const l = t.querySelector('.tag-label').getBoundingClientRect();
    return {text: t.textContent, state: t.dataset.state,
            box: [r.left, r.top, r.right, r.bottom], label: [l.left, l.top, l.right, l.bottom]};
  })"""
BOTH_NAMED_JS = f"""() => {{
  const names = ({TAGS_JS})().map((t) => t.text);
  return names.includes('lead-a') && names.includes('lead-b');
}}"""


@pytest.fixture(scope="module")
def cast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgecastServer]:
    root = tmp_path_factory.mktemp("cast-e2e")
    cast = enrol_leads(root)  # root/state/cast.json: the server's state folder
    srv = AgecastServer(
        free_port(), root / "serve.log", cast.state_dir, source=str(cast.clip),
        identity="testpattern",
    )  # fmt: skip
    srv.start()
    yield srv
    srv.stop()


def server_status(server: AgecastServer) -> dict[str, Any]:
    _, token = LinkStore(server.state_dir).create("viewer", label="e2e-status", expires_s=60)
    req = urllib.request.Request(
        server.url + "/api/status", headers={"authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return dict(json.loads(res.read()))


def member(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in status["cast"]["members"] if m["name"] == name)


def open_cast_panel(page: Page, server: AgecastServer) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    page.click("button[data-action='panel']")
    page.wait_for_selector("#cast", state="visible")


def label_green_fraction(picture: np.ndarray) -> float:
    """How much of a picture is the recognised tag label's green."""
    return float((np.abs(picture.astype(int) - TAG_GREEN).max(axis=2) < 30).mean())


def test_name_tags_name_each_lead_over_the_aged_side_never_in_the_picture(
    cast_server: AgecastServer, page: Page, shots: Path
) -> None:
    from PIL import Image

    open_cast_panel(page, cast_server)
    assert page.get_attribute("#cast-tags", "aria-pressed") == "false"  # off by default
    page.wait_for_function("agecast.status && agecast.status.cast", timeout=RECOGNISED_S)
    wait_painting(page, page.evaluate("agecast.painted") + 15)  # faces came: no tags while off
    assert page.evaluate(TAGS_JS) == []

    page.click("#cast-tags")
    assert page.get_attribute("#cast-tags", "aria-pressed") == "true"
    page.wait_for_function(BOTH_NAMED_JS, timeout=RECOGNISED_S)
    tags = {t["text"]: t for t in page.evaluate(TAGS_JS)}
    picture = page.locator("#picture").bounding_box()
    assert picture is not None
    aged_x0, half_w = picture["x"] + picture["width"] / 2, picture["width"] / 2
    for tag in tags.values():  # every tag on the aged (right) half, inside the picture
        x0, y0, x1, y1 = tag["box"]
        assert aged_x0 - 1 <= x0 < x1 <= picture["x"] + picture["width"] + 1, tag
        assert picture["y"] - 1 <= y0 < y1 <= picture["y"] + picture["height"] + 1, tag
    a, b = tags["lead-a"], tags["lead-b"]
    assert a["state"] == b["state"] == "recognised"
    # where the clip puts them: lead-a's head about a quarter of the way across, lead-b's
    # about three quarters (agecast.cast.scene), both around the middle of the height
    where = {
        name: (
            ((t["box"][0] + t["box"][2]) / 2 - aged_x0) / half_w,
            ((t["box"][1] + t["box"][3]) / 2 - picture["y"]) / picture["height"],
        )
        for name, t in tags.items()
        if name in IDENTITIES
    }
    assert 0.1 < where["lead-a"][0] < 0.45 and 0.55 < where["lead-b"][0] < 0.9, where
    assert all(0.2 < y < 0.8 for _, y in where.values()), where
    assert a["label"][3] <= a["box"][1] + 1  # the name sits over the face, not on it
    page.screenshot(path=str(shots / "cast-name-tags.png"))
    # The tags are on the screen (the labels' green: 0.75 % of the picture here), and not in
    # the picture the canvas holds (0.004 % there: the test pattern's own green lines).
    page.wait_for_function(BOTH_NAMED_JS)
    shown = np.asarray(Image.open(io.BytesIO(page.locator("#picture").screenshot())).convert("RGB"))
    assert label_green_fraction(shown) > 0.003
    assert label_green_fraction(grab_canvas(page)) < 0.001

    # The aged view alone: the tags follow the faces across the whole picture; raw alone: none.
    page.click("#stage", position={"x": 20, "y": 20})
    page.keyboard.press("3")
    page.wait_for_function(BOTH_NAMED_JS)
    page.wait_for_function(
        f"""() => {{
          const p = document.querySelector('#picture').getBoundingClientRect();
          const at = Object.fromEntries(({TAGS_JS})().map((t) =>
            [t.text, ((t.box[0] + t.box[2]) / 2 - p.left) / p.width]));
          return at['lead-a'] < 0.45 && at['lead-b'] > 0.55;
        }}"""
    )
    page.keyboard.press("2")
    page.wait_for_function(f"({TAGS_JS})().length === 0")
    page.keyboard.press("1")

    # Remembered by this browser: a reload keeps them on.
    page.reload()
    wait_painting(page, 5)
    page.wait_for_function(BOTH_NAMED_JS, timeout=RECOGNISED_S)
    page.click("button[data-action='panel']")
    page.click("#cast-tags")
    page.wait_for_function(f"({TAGS_JS})().length === 0")
    assert page.evaluate("localStorage.getItem('agecast.nameTags')") == "false"


def test_a_cast_row_bypasses_one_member_for_everyone(
    cast_server: AgecastServer, page: Page, shots: Path
) -> None:
    open_cast_panel(page, cast_server)
    row_a = page.locator("#cast-members li[data-member='lead-a']")
    row_b = page.locator("#cast-members li[data-member='lead-b']")
    row_a.wait_for()
    assert page.locator("#cast-members li").count() == 2
    assert row_a.locator("select").input_value() == IDENTITIES["lead-a"]
    assert row_b.locator("select").input_value() == IDENTITIES["lead-b"]
    try:
        row_a.locator(".member-bypass").click()
        page.wait_for_function(
            "agecast.status.cast.members.find((m) => m.name === 'lead-a').bypass === true"
        )
        status = server_status(cast_server)
        assert member(status, "lead-a")["bypass"] is True
        assert member(status, "lead-b")["bypass"] is False  # the other lead keeps the effect
        assert status["look"]["bypass"] is False
        assert row_a.locator(".member-bypass").get_attribute("aria-pressed") == "true"
        assert row_b.locator(".member-bypass").get_attribute("aria-pressed") == "false"

        # an age typed for lead-b reaches the server for lead-b only
        row_b.locator(".member-age-number").fill("45")
        row_b.locator(".member-age-number").press("Enter")
        page.wait_for_function(
            "agecast.status.cast.members.find((m) => m.name === 'lead-b').age === 45"
        )
        status = server_status(cast_server)
        assert member(status, "lead-b")["age"] == 45 and member(status, "lead-a")["age"] is None
        page.screenshot(path=str(shots / "cast-rows.png"))
    finally:
        cast_server.control(members={"lead-a": {"bypass": False}, "lead-b": {"age": None}})


def test_the_footer_counts_faces_by_recognition(cast_server: AgecastServer, page: Page) -> None:
    page.goto(cast_server.page_url("/"))
    wait_painting(page, 5)
    page.wait_for_selector("#m-faces", state="visible")
    # both leads recognised in one picture: "2 / …"
    page.wait_for_function(
        "Number(document.querySelector('#m-faces').textContent.split('/')[0]) >= 2",
        timeout=RECOGNISED_S,
    )
    p50, p95 = (float(v) for v in page.inner_text("#m-recognise").split("/"))
    assert 0 < p50 <= p95


def test_a_view_only_link_gets_no_cast_controls_and_no_tags(
    cast_server: AgecastServer, browser: Browser, watched: Watched
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    # this browser had name tags on (an operator's earlier session): a viewer still gets none
    context.add_init_script("localStorage.setItem('agecast.nameTags', 'true')")
    page = watched.attach(context.new_page())
    try:
        _, token = LinkStore(cast_server.state_dir).create("viewer", label="director")
        page.goto(f"{cast_server.url}/?token={token}")
        wait_painting(page, 5)
        page.wait_for_function("document.body.dataset.access === 'viewer'")
        assert not page.locator("button[data-action='panel']").is_visible()
        assert not page.locator("#r-rec").is_visible()
        page.click("#stage", position={"x": 20, "y": 20})
        page.keyboard.press("o")
        assert page.locator("#panel").is_hidden() and page.locator("#cast").is_hidden()
        page.wait_for_selector("#m-faces", state="visible")  # the read-out is for everyone
        wait_painting(page, 40)
        assert page.evaluate(TAGS_JS) == []
        assert page.evaluate("agecast.tags.visible") is False
    finally:
        context.close()
