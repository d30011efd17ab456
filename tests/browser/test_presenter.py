"""Presenter mode on a 1920x1080 projector, measured in real Chromium from the elements'
own boxes and computed styles: the code, the picture and the narration of the step are in
view together without scrolling, no code line is cut off, and no text is under 24 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1920, 1080
MIN_PX = 24

# Every element that shows text of its own (a non-blank text node), is drawn (not hidden,
# not a screen-reader-only 1 px box) and its computed font size.
SMALL_TEXT = """(min) => {
  const small = [];
  for (const element of document.body.querySelectorAll("*")) {
    if (element.closest("option, script, style, template, noscript")) continue;
    const own = Array.from(element.childNodes).some(
      (node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
    if (!own) continue;
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    if (box.width <= 1 || box.height <= 1 || style.visibility === "hidden") continue;
    const size = parseFloat(style.fontSize);
    const text = element.textContent.trim().slice(0, 40);
    if (size < min) small.push(`${element.tagName}.${element.className} ${size}px: ${text}`);
  }
  return small;
}"""

CUT_LINES = """() => Array.from(
    document.querySelectorAll(".panel.source pre.code")).flatMap((pre) => {
  const box = pre.getBoundingClientRect();
  const cut = pre.scrollWidth > pre.clientWidth + 1 ? ["the block scrolls sideways"] : [];
  for (const line of pre.querySelectorAll(".line")) {
    const r = line.getBoundingClientRect();
    if (r.right > box.right + 1 || r.left < box.left - 1) cut.push(line.textContent);
  }
  return cut;
})"""


@pytest.fixture
def projector(browser: Browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    yield page
    context.close()


def in_view(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not drawn"
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= WIDTH and box["y"] + box["height"] <= HEIGHT, (selector, box)


@pytest.mark.parametrize(
    ("scenario", "moment"),
    [("async-io", "await.suspended"), ("sync-io", "call.blocking"), ("async-cpu", "loop.blocked")],
)
def test_code_picture_and_narration_fit_a_projector_with_large_text(
    projector: Page, browser_server, scenario, moment
):
    recording = f"example-{scenario}-4-requests"
    trace = projector.request.get(f"{browser_server.base_url}/recordings/{recording}.json").json()
    step = next(e["seq"] for e in trace["events"] if e["kind"] == moment)
    projector.goto(
        f"{browser_server.base_url}/scenarios/{scenario}/?recording={recording}&step={step}&presenter=1"
    )
    assert projector.evaluate("() => [scrollX, scrollY]") == [0, 0]

    for selector in (".panel.source", "#picture", ".panel.narration", "#step-counter"):
        in_view(projector, selector)
    assert projector.locator(".panel.source .line.current").count() == 1
    for index in range(projector.locator(".panel.source .line").count()):
        in_view(projector, f".panel.source .line >> nth={index}")
    assert projector.evaluate(CUT_LINES) == []
    assert projector.evaluate(SMALL_TEXT, MIN_PX) == []


def test_the_lab_in_presenter_mode_has_no_text_under_24_px(projector: Page, browser_server):
    projector.goto(
        f"{browser_server.base_url}/lab/?recording=example-sync-io-4-requests"
        "&compare=example-async-cpu-4-requests&presenter=1"
    )
    labels = projector.locator(".time-strip .lane-label")
    assert labels.count() >= 2 * (4 + 1)
    assert projector.evaluate(SMALL_TEXT, MIN_PX) == []
    # The timelines' lane labels, measured one by one.
    for index in range(labels.count()):
        size = labels.nth(index).evaluate("(e) => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= MIN_PX
