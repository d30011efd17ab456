"""A long live run's rows stay in step order on the page, however the page follows it."""

from __future__ import annotations

import http.client
import json

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

# After every change to the page, the execution table must list consecutive steps: no step
# twice, none missing between two rows, none out of place.
WATCH_ROWS = """() => {
  window.rowFaults = [];
  const check = () => {
    const steps = [...document.querySelectorAll("#rows tr")].map((row) => Number(row.id.slice(5)));
    for (let i = 1; i < steps.length; i++) {
      if (steps[i] !== steps[i - 1] + 1) {
        window.rowFaults.push(steps.slice(Math.max(0, i - 2), i + 2));
        return;
      }
    }
  };
  new MutationObserver(check).observe(document.body, { childList: true, subtree: true });
}"""


# Clicks "Follow live" in the same turn of the page's event loop that finds it shown (the
# run still going on), so the run cannot end between the look and the click; tells which.
CLICK_FOLLOW_LIVE_IF_RUNNING = """() => {
  const follow = document.getElementById("follow-live");
  if (!follow || follow.hidden) return false;
  follow.click();
  return true;
}"""


def rows_shown(page: Page) -> int:
    return page.locator("#rows tr").count()


def recorded_steps(server, recording: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", f"/recordings/{recording}.json")
    document = json.loads(connection.getresponse().read())
    connection.close()
    return len(document["events"])


def test_a_long_runs_rows_stay_in_step_order_while_pages_step_away_join_and_follow(
    page, browser_server
):
    page.goto(f"{browser_server.base_url}/scenarios/async-cpu/")
    expect(page.locator("#connection")).to_be_hidden()
    page.evaluate(WATCH_ROWS)
    # 20 requests that each compute for a while: about 200 steps over several seconds,
    # more than the table shows around one step (visualizer/traces/player.py, TABLE_WINDOW).
    page.get_by_label("Concurrent requests", exact=True).fill("20")
    page.get_by_label("CPU work (primes below)", exact=True).fill("150000")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('#rows tr').length > 60")
    recording = page.locator("#player").get_attribute("data-recording") or ""

    # Another page opens the run's address while it goes on: its table comes with the page,
    # its live rows from the moment its socket joins.
    viewer = page.context.new_page()
    viewer.goto(f"{browser_server.base_url}/scenarios/async-cpu/?recording={recording}")
    viewer.evaluate(WATCH_ROWS)

    # Away to the first step (its table ends long before the live end) while rows stream...
    page.get_by_role("link", name="First step").click()
    expect(page.locator("#step-counter strong")).to_have_text("1")
    shown_at_first_step = rows_shown(page)
    page.wait_for_function(
        f"() => Number(document.getElementById('live-marker').dataset.seq) > "
        f"{shown_at_first_step} + 20"
    )
    # ...and back to following: the page fetches the latest steps while more arrive. The
    # control is there only while the run goes on, and on a busy machine the run can end
    # first: then the page, which stepped away, stays at its step until asked for the end.
    followed = page.evaluate(CLICK_FOLLOW_LIVE_IF_RUNNING)
    expect(page.locator("#run-status")).to_contain_text("Finished", timeout=60_000)
    expect(viewer.locator("#run-status")).to_contain_text("Finished", timeout=60_000)

    total = recorded_steps(browser_server, recording)
    if not followed:
        expect(page.locator("#follow-live")).to_be_hidden()
        expect(page.locator("#step-counter strong")).to_have_text("1")
        # "Last step" leads to the last step the player knew of when it was drawn, and
        # from there, if the run went on after that, the next one to the run's end.
        counter, at_the_end = page.locator("#step-counter"), f"Step {total} of {total}"
        page.get_by_role("link", name="Last step").click()
        expect(counter.locator("strong")).not_to_have_text("1")
        if " ".join(counter.inner_text().split()) != at_the_end:
            page.get_by_role("link", name="Last step").click()
        expect(counter).to_have_text(at_the_end)
    expect(page.locator("#rows tr").last).to_have_id(f"step-{total}")
    assert page.evaluate("window.rowFaults") == []
    assert viewer.evaluate("window.rowFaults") == []
