"""The monitor's layout at 1024 px, 1600 px and 4K, in real Chromium: what a user would notice.

Panels dock beside or under the picture and never cover it; REC and the connection badge stay
in view; the header does not overflow; the picture's labels never collide with each other or
with the AI mark the server burns into the aged picture. Screenshots of every state go to the
shots folder (``layout-<width>-<state>.png``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from agecast.compose.marks import Marker
from tests.e2e.conftest import HEIGHT, WIDTH, AgecastServer, wait_painting
from tests.takes.review_media import make_take

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

Box = Mapping[str, float]
SIZES = [(1024, 768), (1600, 900), (3840, 2160)]


@contextmanager
def sized_page(browser: Browser, size: tuple[int, int]) -> Iterator[Page]:
    """A fresh page ``size`` CSS pixels large; fails the test if the page threw."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def box(page: Page, selector: str) -> Box:
    found = page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not on screen"
    return {k: float(found[k]) for k in ("x", "y", "width", "height")}


def overlap(a: Box, b: Box) -> bool:
    """True when the two boxes share some area (touching edges do not count)."""
    return (
        min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"]) > 0.5
        and min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"]) > 0.5
    )


def inside(inner: Box, outer: Box) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def ai_mark_box(page: Page, region: Box) -> Box:
    """Where the server burns "AI" into an aged picture shown in ``region`` (page pixels): the
    live pipeline's own Marker, on a picture of the stream's aged size."""
    rect = Marker().burn(torch.zeros(HEIGHT, WIDTH, 3, dtype=torch.uint8), "AI", "top-right")
    sx, sy = region["width"] / WIDTH, region["height"] / HEIGHT
    return {
        "x": region["x"] + rect.x0 * sx,
        "y": region["y"] + rect.y0 * sy,
        "width": (rect.x1 - rect.x0) * sx,
        "height": (rect.y1 - rect.y0) * sy,
    }


def on_page(page: Page, rect: Mapping[str, float]) -> Box:
    """A rectangle of the view's plan (canvas pixels) in page pixels."""
    picture = box(page, "#picture")
    plan = page.evaluate("agecast.display.plan")
    sx, sy = picture["width"] / plan["w"], picture["height"] / plan["h"]
    return {
        "x": picture["x"] + rect["x"] * sx,
        "y": picture["y"] + rect["y"] * sy,
        "width": rect["w"] * sx,
        "height": rect["h"] * sy,
    }


def aged_region(page: Page) -> Box:
    """The aged picture's whole frame on the page (the view's plan says where it is)."""
    frame = page.evaluate(
        "(() => { const p = agecast.display.plan;"
        " return p.frames[Math.max(0, p.frames.findIndex(f => f.clip === p.aged))].full; })()"
    )
    return on_page(page, frame)


def check_header(page: Page, size: tuple[int, int]) -> None:
    """Every header item on screen, none over another; LIVE and REC in view."""
    screen = {"x": 0, "y": 0, "width": size[0], "height": size[1]}
    header = box(page, "#top")
    assert header["width"] <= size[0] + 0.5
    items = [
        ".brand",
        "#identity-name",
        "nav.views",
        "#r-rec",
        "#fx-badge",
        "#state-badge",
    ]
    boxes = {sel: box(page, sel) for sel in items}
    for sel, found in boxes.items():
        assert inside(found, screen), f"{sel} runs off the screen: {found}"
        assert inside(found, header), f"{sel} spills out of the header: {found} vs {header}"
    for i, first in enumerate(items):
        for second in items[i + 1 :]:
            assert not overlap(boxes[first], boxes[second]), f"{first} and {second} overlap"
    # the view buttons themselves fit their bar (no clipped labels)
    clipped = page.evaluate(
        "[...document.querySelectorAll('#top button')]"
        ".filter(b => b.offsetParent && b.scrollWidth > b.clientWidth + 1).map(b => b.textContent)"
    )
    assert not clipped, f"header buttons with clipped text: {clipped}"
    assert page.inner_text("#state-badge") == "LIVE"
    # the footer too: every read-out and tool on screen
    footer = page.eval_on_selector_all(
        "#bottom .metrics > div, #bottom .tools button",
        "els => els.filter(e => e.offsetParent).map(e => {"
        " const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.left, r.right]; })",
    )
    assert footer and all(left >= 0 and right <= size[0] + 0.5 for _, left, right in footer), footer


def check_labels(page: Page, view: str) -> None:
    """RAW and AGED apart, and neither on the AI mark of the aged picture."""
    page.evaluate(f"agecast.setView('{view}')")
    page.wait_for_function(f"agecast.view === '{view}'")
    page.wait_for_timeout(150)
    a, b = box(page, "#label-a"), box(page, "#label-b")
    picture = box(page, "#picture")
    assert inside(a, picture) and inside(b, picture), f"{view}: a label off the picture"
    assert not overlap(a, b), f"{view}: RAW and AGED labels overlap"
    mark = ai_mark_box(page, aged_region(page))
    assert not overlap(a, mark) and not overlap(b, mark), f"{view}: a label covers the AI mark"


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_layout_at_each_width(
    server: AgecastServer, browser: Browser, size: tuple[int, int], shots: Path
) -> None:
    w = size[0]
    with sized_page(browser, size) as page:
        page.goto(server.page_url("/"))
        wait_painting(page, 5)
        check_header(page, size)
        alone = box(page, "#picture")
        page.screenshot(path=str(shots / f"layout-{w}-side-by-side.png"))

        # Controls open: docked, the picture shrinks into the space left, nothing covers it.
        page.click("button[data-action='panel']")
        page.wait_for_selector("#panel", state="visible")
        page.wait_for_timeout(200)
        picture, panel = box(page, "#picture"), box(page, "#panel")
        assert not overlap(picture, panel), "the controls cover the picture"
        assert inside(picture, box(page, "#view"))
        check_header(page, size)
        # Side by side on a wide screen: the panel goes under the picture, into the height a
        # 32:9 picture does not use, so the picture stays (nearly) as large as without it.
        assert page.evaluate("agecast.dock") == "bottom"
        assert picture["width"] >= 0.8 * alone["width"]
        page.screenshot(path=str(shots / f"layout-{w}-controls.png"))

        # Takes as well: three boxes, no two overlapping.
        page.click("button[data-action='takes']")
        page.wait_for_selector("#takes", state="visible")
        page.wait_for_timeout(200)
        boxes = [box(page, "#picture"), box(page, "#panel"), box(page, "#takes")]
        assert not any(overlap(boxes[i], boxes[j]) for i in range(3) for j in range(i + 1, 3))
        page.screenshot(path=str(shots / f"layout-{w}-controls-takes.png"))
        page.click("button[data-action='takes']")

        # Over/under: a tall picture; the panel goes beside it and the picture fills the height.
        page.evaluate("agecast.setView('stacked')")
        page.wait_for_function("agecast.dock === 'right'")
        page.wait_for_timeout(200)
        picture, panel, view = box(page, "#picture"), box(page, "#panel"), box(page, "#view")
        assert not overlap(picture, panel)
        assert picture["height"] >= 0.95 * view["height"]
        check_labels(page, "stacked")
        page.screenshot(path=str(shots / f"layout-{w}-stacked-controls.png"))
        page.keyboard.press("Escape")
        page.wait_for_selector("#panel", state="hidden")

        for view_name in ("side-by-side", "wipe", "stacked"):
            check_labels(page, view_name)
            page.screenshot(path=str(shots / f"layout-{w}-{view_name}.png"))


@pytest.mark.parametrize("size", [(1600, 900), (3840, 2160)], ids=["1600x900", "3840x2160"])
def test_fill_uses_the_screen_and_keeps_the_ai_mark(
    server: AgecastServer, browser: Browser, size: tuple[int, int], shots: Path
) -> None:
    """Side by side on a 16:9 screen leaves bars above and below; Fill (Z) crops the pictures'
    edges instead, and shows the page's own AI mark where the crop took the burnt-in one."""
    with sized_page(browser, size) as page:
        page.goto(server.page_url("/"))
        wait_painting(page, 5)
        view = box(page, "#view")
        fitted = box(page, "#picture")
        assert fitted["width"] * fitted["height"] < 0.7 * view["width"] * view["height"]
        page.keyboard.press("z")
        page.wait_for_function("agecast.display.fill")
        page.wait_for_timeout(300)
        filled = box(page, "#picture")
        assert filled["width"] * filled["height"] >= 0.97 * view["width"] * view["height"]
        assert page.get_attribute("button[data-action='fill']", "aria-pressed") == "true"
        # each picture cropped around its centre, both the same frame: halves of equal width
        plan = page.evaluate("agecast.display.plan")
        assert plan["regions"][0]["w"] == plan["regions"][1]["w"]
        assert plan["agedCropped"] is True
        page.wait_for_selector("#ai-mark", state="visible")
        mark, a, b = box(page, "#ai-mark"), box(page, "#label-a"), box(page, "#label-b")
        assert not overlap(mark, a) and not overlap(mark, b) and not overlap(a, b)
        assert inside(mark, aged_region_visible(page))
        page.screenshot(path=str(shots / f"layout-{size[0]}-fill.png"))
        # Controls open: the picture still fills what is left, the panel beside or under it.
        page.click("button[data-action='panel']")
        page.wait_for_timeout(300)
        assert not overlap(box(page, "#picture"), box(page, "#panel"))
        assert inside(box(page, "#picture"), box(page, "#view"))
        page.keyboard.press("z")
        page.wait_for_function("!agecast.display.fill")
        page.wait_for_selector("#ai-mark", state="hidden")


def aged_region_visible(page: Page) -> Box:
    """What shows of the aged picture (a fill crops it)."""
    return on_page(page, page.evaluate("agecast.display.plan.aged"))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_review_layout_at_each_width(
    server: AgecastServer, browser: Browser, size: tuple[int, int], shots: Path
) -> None:
    """Reviewing a take with the re-render panel open: transport, panel and picture apart, and
    nothing wider than the window."""
    take = make_take(server.state_dir / "takes", "layout", str(size[0]), frames=12)
    with sized_page(browser, size) as page:
        page.goto(server.page_url("/"))
        wait_painting(page, 3)
        page.click("button[data-action='takes']")
        page.click(f"button.take[data-id='{take.id}']")
        page.wait_for_function("agecast.lastPainted.index === 0")
        page.click("#t-render")
        page.wait_for_selector("#render", state="visible")
        page.wait_for_timeout(200)
        screen = {"x": 0, "y": 0, "width": size[0], "height": size[1]}
        parts = {s: box(page, s) for s in ("#picture", "#render", "#transport", "#stage", "#top")}
        for sel, found in parts.items():
            assert inside(found, screen), f"{sel} runs off the screen: {found}"
        assert not overlap(parts["#picture"], parts["#render"])
        assert not overlap(parts["#transport"], parts["#stage"])
        for sel in ("#t-render", "#t-live", "#t-pos", "#r-rec", "#state-badge"):
            assert inside(box(page, sel), screen), f"{sel} off the screen"
        page.screenshot(path=str(shots / f"layout-{size[0]}-review-render.png"))
