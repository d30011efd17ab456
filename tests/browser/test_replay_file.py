"""The one-file replay opens from disk with the network off, and steps like the player."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, expect

from tracer.validation import parse_trace
from visualizer.traces.library import EXAMPLES_DIR

pytestmark = pytest.mark.browser
EXAMPLE = json.loads((EXAMPLES_DIR / "async-io-4-requests.json").read_bytes())


def test_it_replays_a_recording_from_a_file_with_no_network(
    browser: Browser, browser_server, tmp_path
):
    download = browser_server.base_url + "/traces/example-async-io-4-requests/replay.html"
    context = browser.new_context()
    page = context.new_page()
    answer = page.request.get(download)
    assert answer.ok and "attachment" in answer.headers["content-disposition"]
    path = tmp_path / "replay.html"
    path.write_bytes(answer.body())

    context.set_offline(True)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    total = len(EXAMPLE["events"])
    expect(page.locator("#step-counter")).to_contain_text(f"Step 1 of {total}")

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#step-counter strong")).to_have_text("3")
    expect(page.locator("#narration-text")).not_to_be_empty()
    third = EXAMPLE["events"][2]
    expect(page.locator(".code .line.current")).to_contain_text(
        str(third["line"]) if third.get("line") else ""
    )
    page.keyboard.press("End")
    expect(page.locator("#step-counter strong")).to_have_text(str(total))
    page.get_by_role("link", name="Previous step").click()
    expect(page.locator("#step-counter strong")).to_have_text(str(total - 1))
    expect(page.locator("#announcer")).not_to_be_empty()
    assert page.url.endswith(f"#step-{total - 1}")
    # The loop picture is there, styled by the page's own stylesheet, inline.
    expect(page.locator("#player .picture-drawing")).to_be_visible()
    assert ".picture-loop" in page.locator("style").inner_text()
    # Nothing was fetched but the file itself.
    assert requests == [path.as_uri()]
    context.close()


def test_a_hostile_value_in_the_recording_stays_text_in_the_file(
    browser: Browser, browser_server, tmp_path
):
    from visualizer.scenarios.catalog import SCENARIOS
    from visualizer.traces.replay import replay_file
    from visualizer.traces.sources import DocumentSource

    hostile = json.loads(json.dumps(EXAMPLE))
    hostile["id"] = "hostile-replay"
    script = "</template><script>window.pwned = 1</script><img src=x onerror=window.pwned=2>"
    for event in hostile["events"]:
        event.get("locals", {})["delay_ms"] = script
    document = parse_trace(json.dumps(hostile).encode())  # a valid document, as imported
    html = replay_file(SCENARIOS["async-io"], DocumentSource(document))
    assert "<script>window.pwned" not in html

    path = tmp_path / "hostile.html"
    path.write_text(html)
    page = browser.new_page()
    page.goto(path.as_uri())
    page.keyboard.press("End")
    expect(page.locator("#player")).to_contain_text("window.pwned")
    assert page.evaluate("window.pwned") is None
    page.close()
