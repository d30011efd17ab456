"""The scenario page in real Chromium against a real Daphne server."""

from __future__ import annotations

import http.client
import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import BUSY_MACHINE_MS
from tracer.django_integration import recording_header_value

pytestmark = pytest.mark.browser
RECORDING = "X-Trace-Recording"


def open_scenario(page: Page, server, slug: str, query: str = "") -> None:
    page.goto(f"{server.base_url}/scenarios/{slug}/{query}")
    # The live stream is connected once the status line is hidden again.
    expect(page.locator("#connection")).to_be_hidden()


def row_numbers(page: Page) -> list[int]:
    return [int(text.strip("▶ ")) for text in page.locator("#rows tr th").all_inner_texts()]


def test_it_streams_rows_while_the_request_is_still_running(page, browser_server):
    open_scenario(page, browser_server, "async-io")
    page.get_by_label("Concurrent requests", exact=True).fill("2")
    page.get_by_label("I/O delay (ms)", exact=True).fill("6000")

    page.get_by_role("button", name="Run", exact=True).click()
    # Both requests reach their await within a few hundred milliseconds (a fresh server's
    # first request may add a step or two of its own, which is why this says "at least");
    # a busy machine can take seconds, still well within the 6 s wait.
    page.wait_for_function(
        "() => document.querySelectorAll('#rows tr td:nth-child(3)').length >= 5 && "
        "[...document.querySelectorAll('#rows tr td:nth-child(3)')]"
        ".filter(cell => cell.textContent.includes('Pauses at line')).length === 2",
        timeout=5000,
    )

    # Both requests are still waiting on their 6-second I/O: the run has not finished.
    expect(page.locator("#run-status")).to_contain_text("Running")
    arrived = row_numbers(page)
    assert len(arrived) >= 5
    assert arrived == list(range(1, len(arrived) + 1))
    assert (
        page.locator("#rows tr td:nth-child(3)").first.inner_text().startswith("Request received")
    )
    assert "Resumes" not in page.locator("#rows").inner_text()
    expect(page.locator("#run-status")).to_contain_text("Finished", timeout=30_000)
    total = len(row_numbers(page))
    assert total >= 16
    # The URL follows live steps (replaceState after each), so it settles on the last.
    expect(page).to_have_url(re.compile(rf"step={total}$"))


def test_the_pages_own_work_never_stalls_the_runs_loop(page, browser_server):
    """The page's rendering and streaming run in the UI process, the views in the subject
    process. Before they were apart, most runs from this page ended in a loop stall of
    50-100 ms held by code of no traced request: the page's own work, not the view's."""
    for _ in range(3):
        open_scenario(page, browser_server, "async-io")
        page.get_by_label("Concurrent requests", exact=True).fill("4")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#run-status")).to_contain_text("Finished", timeout=30_000)
        recording = page.locator("#player").get_attribute("data-recording")
        connection = http.client.HTTPConnection("127.0.0.1", browser_server.port, timeout=30)
        connection.request("GET", f"/recordings/{recording}.json")
        document = json.loads(connection.getresponse().read())
        connection.close()

        assert len(document["requests"]) == 4
        # Nothing outside the requests held their loop (the page's work did, before), and
        # no code computed on it. (On a machine loaded by other work the loop's thread can
        # still be off the CPU past the threshold now and then: preempted, waiting, or
        # waiting for the GIL, which the requests' own threads in the subject hold while
        # Django runs their signal receivers there.)
        stalls = [
            e
            for e in document["events"]
            if e["kind"] == "loop.blocked"
            # A busy machine also stretches a quick step of Django's past the threshold
            # (tens of ms); the page's work, when it shared the loop, held it far longer.
            and e["duration_ns"] >= BUSY_MACHINE_MS * 1_000_000
            and (e["request"] is None or e["cause"] not in ("preempted", "waiting", "gil"))
        ]
        assert stalls == [], [(e["seq"], e["duration_ns"], e["cause"]) for e in stalls]


def record_in_browser(page: Page, server, delay_ms: str = "50", requests: str = "") -> str:
    open_scenario(page, server, "sync-io")
    page.get_by_label("I/O delay (ms)", exact=True).fill(delay_ms)
    if requests:
        page.get_by_label("Concurrent requests", exact=True).fill(requests)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-status")).to_contain_text("Finished", timeout=10_000)
    return page.locator("#player").get_attribute("data-recording") or ""


def step_count(page: Page) -> int:
    return page.locator("#rows tr").count()


def current_step(page: Page) -> str:
    return page.locator("#step-counter strong").inner_text()


def test_presenter_mode_and_theme_keep_the_run_just_recorded(page, browser_server):
    recording = record_in_browser(page, browser_server)
    steps = step_count(page)

    page.get_by_role("link", name="Presenter mode").click()
    expect(page.locator("html")).to_have_class(re.compile("presenter"))
    expect(page).to_have_url(re.compile(f"recording={recording}"))
    expect(page.locator("#rows tr")).to_have_count(steps)

    page.get_by_role("link", name="Dark").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page).to_have_url(re.compile(f"recording={recording}"))
    expect(page.locator("#rows tr")).to_have_count(steps)


def test_enter_on_a_step_link_keeps_the_keyboard_focus_there(page, browser_server):
    record_in_browser(page, browser_server)
    page.locator("body").press("Home")
    expect(page.locator("#step-counter strong")).to_have_text("1")
    next_step = page.get_by_role("link", name="Next step")
    next_step.focus()

    for step in ("2", "3"):
        page.keyboard.press("Enter")
        expect(page.locator("#step-counter strong")).to_have_text(step)
        # The new player's own Next step link has the focus once the swap has settled.
        expect(next_step).to_be_focused()


def test_it_steps_back_and_forth_by_keys_and_buttons(page, browser_server):
    record_in_browser(page, browser_server)
    total = str(step_count(page))
    assert int(total) >= 8
    expect(page.locator("#step-counter")).to_contain_text(f"Step {total} of {total}")

    page.locator("body").press("ArrowLeft")
    expect(page.locator("#step-counter strong")).to_have_text(str(int(total) - 1))
    page.locator("body").press("Home")
    expect(page.locator("#step-counter strong")).to_have_text("1")
    expect(page.locator("#narration-text")).to_contain_text("has reached Django")
    page.locator("body").press("ArrowRight")
    expect(page.locator("#step-counter strong")).to_have_text("2")
    # Step 2 is Django's own work before the view: its request_started receivers.
    expect(page.locator("#narration-text")).to_contain_text("request_started receivers")

    page.get_by_role("link", name="Next step").click()
    expect(page.locator("#step-counter strong")).to_have_text("3")
    rows = page.locator("#rows tr").all_inner_texts()
    check = 1 + next(number for number, text in enumerate(rows) if "Django checks" in text)
    handoff = 1 + next(number for number, text in enumerate(rows) if "Handed from" in text)
    assert 3 <= check < handoff
    for step in range(4, handoff + 1):
        if step - 1 == check:
            expect(page.locator("#narration-text")).to_contain_text("plain function (def)")
        page.get_by_role("link", name="Next step").click()
        expect(page.locator("#step-counter strong")).to_have_text(str(step))
    expect(page.locator(".flow-chart .node.current")).to_contain_text("worker thread")
    # htmx pushes the URL once the swap has settled, a moment after the counter changes.
    expect(page).to_have_url(re.compile(rf"step={handoff}$"))
    page.get_by_role("link", name="Previous step").click()
    expect(page.locator("#step-counter strong")).to_have_text(str(handoff - 1))
    page.locator("body").press("End")
    expect(page.locator("#step-counter strong")).to_have_text(total)
    page.get_by_role("link", name="First step").click()
    expect(page.locator("#step-counter strong")).to_have_text("1")

    page.go_back()
    expect(page.locator("#step-counter strong")).to_have_text(total)


def test_it_plays_through_the_steps_and_pauses(page, browser_server):
    # Three requests: enough steps that playing on from step 3 does not reach the last
    # (where playing stops by itself) before Pause is pressed, on a busy machine too.
    record_in_browser(page, browser_server, requests="3")
    total = step_count(page)
    page.get_by_role("link", name="First step").click()
    # Playing from the last step stops at once: wait until the first step has come.
    expect(page.locator("#step-counter strong")).to_have_text("1")
    page.get_by_label("Speed").select_option("4")

    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => Number(document.querySelector('#step-counter strong').textContent) >= 3"
    )
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_have_attribute("aria-pressed", "false")
    # The step the last tick asked for may still be on its way (a busy machine serves it
    # late): paused means no tick after it, so the step is read once it has come.
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    paused_at = current_step(page)
    assert int(paused_at) < total
    time.sleep(0.6)
    assert current_step(page) == paused_at


def test_it_renders_the_same_state_when_reloaded_at_a_step(page, browser, browser_server):
    recording = record_in_browser(page, browser_server)
    page.get_by_role("link", name="First step").click()
    page.locator("body").press("ArrowRight")
    page.locator("body").press("ArrowRight")
    expect(page.locator("#step-counter strong")).to_have_text("3")
    narration = page.locator("#narration-text").inner_text()
    tracker = page.locator(".tracker-table").inner_text()
    current_row = page.locator("#rows tr[aria-current=step]").inner_text()
    expect(page).to_have_url(re.compile(rf"recording={recording}.*step=3$"))

    page.reload()
    expect(page.locator("#step-counter strong")).to_have_text("3")
    assert page.locator("#narration-text").inner_text() == narration
    assert page.locator(".tracker-table").inner_text() == tracker

    no_script = browser.new_context(java_script_enabled=False)
    plain = no_script.new_page()
    plain.goto(page.url)
    assert plain.locator("#step-counter strong").inner_text() == "3"
    assert plain.locator("#narration-text").inner_text() == narration
    assert plain.locator("#rows tr[aria-current=step]").inner_text() == current_row
    plain.get_by_role("link", name="Next step").click()
    assert plain.locator("#step-counter strong").inner_text() == "4"
    no_script.close()


def test_it_renders_presenter_mode_readable_from_the_back(browser, browser_server):
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.goto(f"{browser_server.base_url}/scenarios/async-io/?presenter=1")

    body_size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    code_size = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.code')).fontSize)"
    )
    assert body_size >= 24
    assert code_size >= 22
    expect(page.locator(".lead")).to_be_hidden()
    expect(page.get_by_role("link", name="Leave presenter mode")).to_be_visible()
    for width, height in ((1280, 720), (3840, 2160)):
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow, f"horizontal scrolling at {width}x{height}"
    context.close()


def recording_finished(server, recording: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", f"/recordings/{recording}.json")
    response = connection.getresponse()
    document = json.loads(response.read()) if response.status == 200 else None
    connection.close()
    return bool(
        document
        and document["requests"]
        and all(r["finished_ns"] is not None for r in document["requests"])
        and any(e["kind"] == "view.returned" for e in document["events"])
    )


def test_it_shows_a_hostile_variable_value_as_text(page, browser_server):
    hostile = "<img/src=x/onerror=alert(1)>"
    # Sent unencoded, so the recorded query string holds the markup too.
    connection = http.client.HTTPConnection("127.0.0.1", browser_server.port, timeout=10)
    connection.request(
        "GET",
        f"/echo/?label={hostile}",
        headers={RECORDING: recording_header_value("hostile-value")},
    )
    assert connection.getresponse().status == 200
    connection.close()
    # The answer can come before the recording holds its last events (a busy machine).
    deadline = time.monotonic() + 60
    while not recording_finished(browser_server, "hostile-value"):
        assert time.monotonic() < deadline, "the echo's recording never finished"
        time.sleep(0.1)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    open_scenario(page, browser_server, "async-io", "?recording=hostile-value")

    expect(page.locator(".tracker-table")).to_contain_text(repr(hostile))
    expect(page.locator("#rows")).to_contain_text(f"GET /echo/?label={hostile}")
    assert page.locator("main img").count() == 0
    page.locator("body").press("Home")
    expect(page.locator("#narration-text")).to_contain_text(hostile)
    assert page.locator("main img").count() == 0
    assert dialogs == []


def test_it_replays_a_bundled_example_from_the_library(page, browser_server):
    page.goto(f"{browser_server.base_url}/traces/")
    page.get_by_role("link", name="Example: sync io 4 requests").click()

    expect(page.locator("#step-counter")).to_contain_text("of")
    page.locator("body").press("Home")
    expect(page.locator("#step-counter strong")).to_have_text("1")
    expect(page.locator("#narration-text")).to_contain_text("has reached Django")
    total = step_count(page)
    threads = set()
    for step in range(2, total + 1):
        page.locator("body").press("ArrowRight")
        expect(page.locator("#step-counter strong")).to_have_text(str(step))
        text = page.locator("#narration-text").inner_text()
        if "moves from MainThread to worker thread" in text:
            threads.add(text.split("worker thread ")[1].split(" ")[0])
    # Four requests recorded under Daphne: four worker threads, replayed without a run.
    assert len(threads) == 4
    expect(page).to_have_url(re.compile(r"recording=example-sync-io-4-requests"))


def test_it_imports_renames_and_deletes_a_trace_in_the_library(page, browser_server, tmp_path):
    exported = page.request.get(
        f"{browser_server.base_url}/traces/example-async-io-1-request/export.json"
    ).json()
    exported["id"] = "imported-in-browser"
    upload = tmp_path / "trace.json"
    upload.write_text(json.dumps(exported))
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "django-async-visualizer.trace", "version": 7}')

    page.goto(f"{browser_server.base_url}/traces/")
    page.get_by_label("Trace document").set_input_files(str(broken))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-error")).to_contain_text("newer than this tool reads")

    page.get_by_label("Trace document").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    expect(page).to_have_url(re.compile(r"recording=imported-in-browser"))
    expect(page.locator("#step-counter")).to_contain_text(f"of {len(exported['events'])}")

    page.goto(f"{browser_server.base_url}/traces/")
    row = page.locator("#trace-imported-in-browser")
    row.get_by_label(re.compile("New name for")).fill("Mine")
    row.get_by_role("button", name="Rename").click()
    expect(page.locator("#trace-imported-in-browser th")).to_have_text("Mine")
    page.locator("#trace-imported-in-browser").get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete the trace").click()
    expect(page.locator("#trace-imported-in-browser")).to_have_count(0)
