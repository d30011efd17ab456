"""The concurrency lab: figures and timeline from traces, and real runs through the page."""

from __future__ import annotations

import html
import json
import re
import time

import httpx
import pytest

from tests.fixtures import VERSION_1_EXAMPLES
from visualizer.lab.metrics import lab_metrics
from visualizer.lab.predictions import reveal
from visualizer.traces.time_strip import lanes_of, time_strip

EXAMPLES = VERSION_1_EXAMPLES


def number_input(html: str, name: str) -> dict[str, str]:
    """The min, max and value of the page's number input called ``name``."""
    tag = re.search(rf'<input type="number" name="{name}"[^>]*>', html)
    assert tag, name
    return dict(re.findall(r'(min|max|value)="([^"]*)"', tag[0]))


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_bytes())


def test_it_computes_the_figures_from_the_trace():
    document = example("sync-io-4-requests")
    metrics = lab_metrics(document)

    durations = sorted(r["duration_ns"] / 1e6 for r in document["requests"])
    assert metrics.requests == 4
    assert metrics.max_ms == durations[-1]
    assert metrics.threads_used == 4
    assert metrics.peak_concurrency == 4
    assert metrics.loop_blocked_ms == 0


def test_it_adds_up_the_loop_stalls_and_sees_one_request_at_a_time():
    document = example("async-cpu-4-requests")
    metrics = lab_metrics(document)

    stalls = [e["duration_ns"] for e in document["events"] if e["kind"] == "loop.blocked"]
    assert metrics.loop_blocked_ms == pytest.approx(sum(stalls) / 1e6)
    assert metrics.threads_used == 1
    # Run one after another: the last request waited for the three before it.
    fastest = min(r["duration_ns"] for r in document["requests"]) / 1e6
    assert metrics.max_ms >= 3 * fastest * 0.9


def test_the_timeline_has_a_lane_per_request_the_loop_and_each_thread():
    document = example("sync-io-4-requests")
    found = lanes_of(document)
    assert found is not None
    lanes, length_ms = time_strip(found).lanes, found.length_ns / 1e6

    labels = [lane.label for lane in lanes]
    assert labels[:4] == [f"r{i} GET /run/sync-io/?delay_ms=300" for i in range(1, 5)]
    assert labels[4] == "event loop"
    assert len([label for label in labels if label.startswith("thread ")]) == 4
    first = lanes[0].segments
    assert [s.phase for s in first] == ["waiting", "thread", "blocked"]
    assert all(0 <= s.left <= 100 and s.left + s.width <= 100.2 for s in first)
    assert length_ms > 300


def open_lab(client: httpx.Client, htmx: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Open the lab page as a browser would: the form's CSRF field and the headers to post
    it with (as htmx does, if asked)."""
    page = client.get("/lab/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    headers = {"Referer": str(page.url)} | ({"HX-Request": "true"} if htmx else {})
    return {"csrfmiddlewaretoken": token}, headers


def post_lab_run(app_server, **fields: str) -> tuple[str, str]:
    """Submit the lab form without JavaScript; the results page and the recording id."""
    with httpx.Client(base_url=app_server.base_url, timeout=90) as client:
        csrf, headers = open_lab(client)
        form = {**csrf, "scenario": "sync-io", "threads": "1", **fields}
        response = client.post("/lab/run/", data=form, headers=headers)
        assert response.status_code == 302, response.text
        results = client.get(response.headers["location"])
    assert results.status_code == 200
    recording = re.search(r"recording=([A-Za-z0-9_-]+)", response.headers["location"])[1]
    return results.text, recording


def test_the_timeline_of_a_run_going_on_ends_its_open_phases_now():
    document = example("async-io-4-requests")
    first = document["requests"][0]["id"]
    suspended = next(
        e for e in document["events"] if e["kind"] == "await.suspended" and e["request"] == first
    )
    # The run as it was just after the first request's view paused.
    document["events"] = [e for e in document["events"] if e["seq"] <= suspended["seq"]]
    for request in document["requests"]:
        request["finished_ns"] = None
    now = suspended["t_ns"] + 100_000_000

    found = lanes_of(document, now_ns=now)
    assert found is not None
    lanes = time_strip(found).lanes

    phases = [segment.phase for segment in lanes[0].segments]
    assert phases[-1] == "suspended"
    assert lanes[0].segments[-1].left + lanes[0].segments[-1].width == pytest.approx(100)
    start = min(r.get("client_sent_ns") or r["received_ns"] for r in document["requests"])
    assert found.length_ns == now - start
    assert lanes_of(document) is None  # nothing finished: no figures yet


def test_a_lab_run_is_followed_live_from_the_page(traced_server):
    """With htmx the run goes on in the background; polling shows its lanes growing, then
    sends the browser to the results."""
    with httpx.Client(base_url=traced_server.base_url, timeout=90) as client:
        csrf, htmx = open_lab(client, htmx=True)
        form = {**csrf, "scenario": "async-io", "requests": "8", "delay_ms": "1500"}
        started = client.post("/lab/run/", data=form, headers=htmx)
        assert started.status_code == 200, started.text
        poll_url = html.unescape(re.search(r'hx-get="(/lab/runs/[^"]+)"', started.text)[1])

        seen_suspended_while_running = False
        for _ in range(100):
            polled = client.get(poll_url, headers=htmx)
            if "HX-Redirect" in polled.headers:
                break
            answered = int(re.search(r'<strong class="answered">(\d+)</strong>', polled.text)[1])
            if answered < 8 and "suspended on an await" in polled.text:
                seen_suspended_while_running = True
            time.sleep(0.2)
        results = client.get(polled.headers["HX-Redirect"])
        no_js = client.get(poll_url)

    assert seen_suspended_while_running
    assert results.status_code == 200
    assert results.text.count('<li class="lane lane-request">') == 8
    assert no_js.status_code == 302 and no_js.headers["location"] == polled.headers["HX-Redirect"]


def test_a_lab_run_with_bad_input_says_why_in_the_page(traced_server):
    with httpx.Client(base_url=traced_server.base_url, timeout=30) as client:
        csrf, htmx = open_lab(client, htmx=True)
        form = {**csrf, "scenario": "async-io", "requests": "500"}
        answer = client.post("/lab/run/", data=form, headers=htmx)
        unknown = client.get("/lab/runs/nope/", headers=htmx)

    assert answer.status_code == 200
    assert 'role="alert"' in answer.text
    assert "requests must be a whole number from 1 to 200" in answer.text
    assert unknown.status_code == 404


def test_a_lab_run_with_bad_input_without_javascript_shows_the_page_with_the_problem(
    traced_server,
):
    with httpx.Client(base_url=traced_server.base_url, timeout=30) as client:
        csrf, headers = open_lab(client)
        form = {**csrf, "scenario": "async-io", "requests": "500", "threads": "x"}
        answer = client.post("/lab/run/", data=form, headers=headers)

    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    for name, message in (
        ("requests", "requests must be a whole number from 1 to 200."),
        ("threads", "threads must be a whole number from 1 to 64."),
    ):
        after = answer.text.split(f'name="{name}"')[1]
        assert after.split("</label>")[1].startswith(
            f'<span class="field-error" role="alert">{message}</span>'
        ), name
    assert number_input(answer.text, "requests")["value"] == "500"  # kept, to mend


def test_a_run_started_by_another_server_process_is_followed_to_its_results(traced_server):
    """With several processes on one address, a poll can reach one that did not start the
    run: it waits for the results to be stored, then goes to them."""
    htmx = {"HX-Request": "true"}
    with httpx.Client(base_url=traced_server.base_url, timeout=30) as client:
        stored = "example-async-io-4-requests"
        query = f"recording={stored}&predict_pause=none"
        done = client.get(f"/lab/runs/{stored}/?{query}", headers=htmx)
        # A run no process is recording (deleted, or never stored): said, and no polling.
        gone = client.get("/lab/runs/elsewhere1/?recording=elsewhere1", headers=htmx)

    assert done.headers["HX-Redirect"] == f"/lab/?recording={stored}&predict_pause=none"
    assert "no longer on this server" in gone.text and "hx-trigger" not in gone.text


@pytest.mark.parametrize(("server", "expected"), [("asgi", "daphne"), ("wsgi", "gunicorn")])
def test_a_lab_run_through_the_page(traced_server, server, expected):
    text, recording = post_lab_run(
        traced_server,
        requests="6",
        delay_ms="100",
        server=server,
        predict_overlap="together",
        predict_wall_ms="100",
        predict_pause="none",
        predict_pause_for="sync-io",
    )

    assert expected in text
    assert text.count('<li class="lane lane-request">') == 6
    stored = httpx.get(f"{traced_server.base_url}/traces/{recording}/export.json").json()
    assert all(r["client_done_ns"] >= r["finished_ns"] for r in stored["requests"])
    assert all(0 < r["tracer_ns"] < r["duration_ns"] for r in stored["requests"])
    assert "Time in the tracer itself" in text and "not recorded" not in text
    assert "You expected 100 ms" in text
    assert "You expected them to run all at the same time" in text
    # sync-io is a plain def view: the question is where its thread waits, and it waits at
    # its blocking call, not nowhere.
    assert "Where does the view&#x27;s thread wait?" in text
    assert "You expected the view's thread to wait nowhere: <strong>not quite</strong>" in text
    call = next(e for e in stored["events"] if e["kind"] == "call.blocking")
    assert f"Its thread waited at line {call['line']} (in <code>fetch_data_blocking</code>" in text
    assert "Key moments" in text and "Django checks what kind of view it has" in text
    # The form is set up as this run was, ready to run again.
    assert number_input(text, "requests") == {"min": "1", "max": "200", "value": "6"}
    assert number_input(text, "delay_ms") == {"min": "0", "max": "10000", "value": "100"}
    assert f'value="{server}" checked' in text


def test_the_reveal_comes_from_the_trace():
    threads = reveal(example("sync-io-4-requests"), "one-by-one", 1200)
    assert threads.overlap == "together"
    assert threads.overlap_right is False
    assert any("4 threads" in reason for reason in threads.reasons)
    assert threads.wall_error_percent == pytest.approx(
        (1200 - threads.wall_ms) / threads.wall_ms * 100
    )
    assert threads.wall_comparison == f"{1200 / threads.wall_ms:.1f}x faster than you expected"

    cpu = reveal(example("async-cpu-4-requests"), "one-by-one", None)
    assert cpu.overlap == "one-by-one" and cpu.overlap_right is True
    assert any("blocked 4 times" in r and "count_primes" in r for r in cpu.reasons)

    awaits = reveal(example("async-io-4-requests"), None, None)
    assert awaits.overlap == "together"
    assert any("await fetch_data(delay_ms)" in reason for reason in awaits.reasons)


def test_where_the_view_paused_comes_from_the_trace():
    from visualizer.lab.predictions import pause_choices
    from visualizer.scenarios.catalog import SCENARIOS

    document = example("async-io-4-requests")
    suspended = [e for e in document["events"] if e["kind"] == "await.suspended"]
    line = suspended[0]["line"]
    assert str(line) in pause_choices(SCENARIOS["async-io"])

    right = reveal(document, None, None, str(line))
    assert right.pause_right is True
    assert [(p.line, p.awaiting, p.step) for p in right.pauses] == [
        (line, "fetch_data(delay_ms)", suspended[0]["seq"])
    ]
    assert reveal(document, None, None, "none").pause_right is False
    assert reveal(document, None, None, str(line + 1)).pause_right is False

    # An async view that only computes never pauses (a plain def view's "pause" is where
    # its thread waits: test_a_plain_def_views_pause_is_where_its_thread_waits).
    never = reveal(example("async-cpu-4-requests"), None, None, "none")
    assert never.pauses == [] and never.pause_right is True

    # Move the pause in the trace, and the right answer moves with it.
    for event in suspended:
        event["line"] = line + 1
    assert reveal(document, None, None, str(line + 1)).pause_right is True


def test_the_lab_form_takes_its_setup_from_the_url_and_offers_the_views_lines(traced_server):
    with httpx.Client(base_url=traced_server.base_url, timeout=30) as client:
        page = client.get("/lab/?scenario=async-cpu&requests=7&server=wsgi&threads=abc")
        swapped = client.get(
            "/lab/?scenario=async-gather",
            headers={"HX-Request": "true", "HX-Target": "pause-question"},
        )

    assert re.search(r'<option value="async-cpu" selected>', page.text)
    assert number_input(page.text, "requests") == {"min": "1", "max": "200", "value": "7"}
    assert 'value="wsgi" checked' in page.text
    assert number_input(page.text, "threads") == {
        "min": "1",
        "max": "64",
        "value": "1",
    }  # invalid: the default
    assert "primes = count_primes(limit)" in page.text
    assert swapped.text.startswith('<div id="pause-question"')
    assert "asyncio.gather(" in swapped.text and "count_primes" not in swapped.text


def test_a_changed_trace_changes_the_reveal():
    document = example("async-io-4-requests")
    document["events"] = [e for e in document["events"] if e["kind"] != "await.resumed"]
    assert not any("await" in reason for reason in reveal(document, None, None).reasons)


def test_a_wsgi_run_on_two_workers_is_merged_into_one_trace(traced_server):
    from tracer.validation import validate_trace

    _, recording = post_lab_run(
        traced_server, requests="6", delay_ms="200", server="wsgi", workers="2"
    )
    document = httpx.get(f"{traced_server.base_url}/traces/{recording}/export.json").json()

    validate_trace(document)
    assert document["server"]["processes"] == 2
    assert len(document["requests"]) == 6
    workers = {r["id"].split("-")[0] for r in document["requests"]}
    assert len(workers) == 2
    assert [e["seq"] for e in document["events"]] == list(range(1, len(document["events"]) + 1))
    # Two workers of one thread: six 200 ms requests take about three rounds, on two
    # threads (each worker's MainThread, told apart by the worker's tag).
    assert lab_metrics(document).wall_ms >= 3 * 200 * 0.9
    assert lab_metrics(document).threads_used == 2
    assert f"{recording}-w" not in httpx.get(f"{traced_server.base_url}/traces/").text


def test_a_pause_answer_given_for_another_scenario_is_not_scored():
    from django.http import QueryDict

    from visualizer.lab.views import _results_query
    from visualizer.scenarios.catalog import SCENARIOS

    answered = QueryDict("predict_pause=none&predict_pause_for=async-io&predict_overlap=x")
    scored = _results_query(answered, SCENARIOS["async-io"], "r1")
    assert scored == "recording=r1&predict_pause=none"
    assert _results_query(answered, SCENARIOS["sync-io"], "r1") == "recording=r1"


@pytest.mark.asyncio
async def test_a_lab_run_that_fails_in_any_way_says_why(monkeypatch):
    import visualizer.lab.runs as lab_module
    from visualizer.lab.runs import LabRun, start_lab
    from visualizer.scenarios.catalog import SCENARIOS

    async def broken(*args, **kwargs):
        raise KeyError("no such recording")

    monkeypatch.setattr(lab_module, "run_lab", broken)
    setup = LabRun.from_values(SCENARIOS["async-io"], {"requests": "2"})
    progress = start_lab(setup, "http://127.0.0.1:9", "fails1", "/lab/?recording=fails1")
    await progress.task

    assert progress.finished
    assert progress.error == "KeyError: 'no such recording'"


def test_the_progress_panel_can_draw_only_the_first_lanes():
    import time as clock

    from visualizer.lab.runs import LabProgress, LabRun, progress_context
    from visualizer.scenarios.catalog import SCENARIOS

    progress = LabProgress(
        LabRun.from_values(SCENARIOS["async-io"], {"requests": "60"}), "many", "/lab/?x"
    )
    now = clock.monotonic_ns()
    for index in range(60):
        progress.client[f"c{index}"] = (now - 100_000_000, 0)

    everything = progress_context(progress)["live"]["strip"]
    first = progress_context(progress, max_requests=40)["live"]["strip"]
    assert sum(lane.kind == "request" for lane in everything.lanes) == 60
    assert sum(lane.kind == "request" for lane in first.lanes) == 40
    assert first.hidden == 20 and everything.hidden == 0
    assert first.lanes[-1].kind == "loop"  # the event loop's lane is still drawn


@pytest.mark.django_db
def test_the_lab_has_presenter_mode_and_themes_that_keep_the_run_shown():
    from django.test import Client

    from visualizer.traces.library import load_examples

    load_examples()
    page = Client().get("/lab/?recording=example-async-io-4-requests&presenter=1&theme=dark")
    html = page.content.decode()

    assert '<html lang="en" class="presenter" data-theme="dark">' in html
    leave = re.search(r'<a href="\?([^"]*)">Leave presenter mode</a>', html)[1]
    assert "recording=example-async-io-4-requests" in leave and "presenter" not in leave
    assert "theme=dark" in leave
    light = re.search(r'<a href="\?([^"]*)">Light</a>', html)[1]
    assert "theme=light" in light and "presenter=1" in light
    assert '<input type="hidden" name="presenter" value="1">' in html


def test_a_lab_run_keeps_presenter_mode_and_theme_in_its_results(traced_server):
    page, _ = post_lab_run(traced_server, requests="2", delay_ms="10", presenter="1", theme="dark")
    assert 'class="presenter" data-theme="dark"' in page


def test_the_wall_time_score_reads_the_right_way_round():
    took = reveal(example("async-io-4-requests"), None, None).wall_ms

    def said(predicted_ms: int) -> str | None:
        return reveal(example("async-io-4-requests"), None, predicted_ms).wall_comparison

    assert said(round(took * 12.4)) == "12x faster than you expected"
    assert said(round(took / 2.5)) == "2.5x slower than you expected"
    assert said(round(took * 1.05)) == "about what you expected"
    assert said(0) == "you expected no time at all"
    assert reveal(example("async-io-4-requests"), None, None).wall_comparison is None


def test_a_plain_def_views_pause_is_where_its_thread_waits():
    from visualizer.lab.predictions import pause_choices, pause_question
    from visualizer.scenarios.catalog import SCENARIOS

    sync = reveal(example("sync-io-4-requests"), None, None, "none")
    waits = [e for e in example("sync-io-4-requests")["events"] if e["kind"] == "call.blocking"]
    assert sync.sync_view and sync.pause_right is False
    assert [pause.line for pause in sync.pauses] == sorted({e["line"] for e in waits})
    assert sync.pauses[0].awaiting == "fetch_data_blocking" and sync.pauses[0].waited
    assert reveal(example("sync-io-4-requests"), None, None, str(waits[0]["line"])).pause_right

    # An async view that computes (its slow call holds the loop, it never waits in a thread)
    # does not pause anywhere; one that awaits pauses at its await.
    cpu = reveal(example("async-cpu-4-requests"), None, None, "none")
    assert not cpu.sync_view and cpu.pauses == [] and cpu.pause_right
    assert not reveal(example("async-io-4-requests"), None, None).sync_view
    assert pause_question(SCENARIOS["sync-io"]).startswith("Where does the view's thread wait?")
    assert pause_question(SCENARIOS["async-io"]) == "Where does the view pause?"
    assert pause_choices(SCENARIOS["sync-io"])["none"] == "nowhere: its thread never waits"
