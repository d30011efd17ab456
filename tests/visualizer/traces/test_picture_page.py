"""The player's picture of the event loop and the threads, where the time went and the
verdict, rendered from real recorded runs: what each says at chosen steps, that it is the
same without JavaScript, and that text from a trace is escaped."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client

from tests.conftest import of_kind
from tests.tracer.conftest import REQUESTS
from visualizer.scenarios.catalog import get_scenario
from visualizer.traces.library import EXAMPLES_DIR, import_trace
from visualizer.traces.pages import player_context
from visualizer.traces.player import player_state
from visualizer.traces.sources import DocumentSource, pictures
from visualizer.traces.time_went import WHOLE, time_went


def panels_at(document: dict[str, Any], step: int) -> str:
    """The step panels at ``step``, as the htmx swap and the live stream render them."""
    scenario = get_scenario((document.get("scenario") or {}).get("slug") or "")
    state = player_state(scenario, DocumentSource(document), step)
    context = player_context(scenario, state, link_query="", current_index=step)
    return render_to_string("traces/player.html#step_panels", context)


def picture_text(html: str) -> str:
    found = re.search(r"<ul class=\"visually-hidden\" data-picture-text>(.*?)</ul>", html, re.S)
    assert found, "the picture has no text alternative"
    return found.group(1)


def lane(html: str, lane_id: str) -> str:
    found = re.search(rf'data-lane="{lane_id}">(.*?)</div>', html, re.S)
    return found.group(1) if found else ""


def test_it_shows_the_loop_held_by_the_stall_and_the_others_ready(async_cpu_run):
    picture = pictures.read(DocumentSource(async_cpu_run), lambda p: p)
    # A step at which one request holds the loop while another is ready to go on.
    step, state = next(
        (e["seq"], state)
        for e in async_cpu_run["events"]
        if (state := picture.state_at(e["seq"])).loop is not None
        and state.loop.stall is not None
        and any(r.state == "ready" for r in state.requests)
    )
    assert state.loop is not None and state.loop.stall is not None
    stall = {"request": state.loop.stall.request, "held_by": state.loop.stall.held_by}
    ready = [r.request for r in state.requests if r.state == "ready"]

    html = panels_at(async_cpu_run, step)

    assert 'class="picture-loop loop-held"' in html
    assert f'<span class="chip">{stall["request"]}</span>' in html
    text = picture_text(html)
    assert f"The event loop: {stall['request']} holds it in {stall['held_by']}" in text
    for request in ready:
        assert f"<strong>{request}</strong> ready to go on" in lane(html, "ready")


def test_it_shows_the_others_suspended_at_their_await_when_one_resumes(async_io_run):
    # On a busy machine a step can pass the stall threshold (20 ms), and the loop is then
    # rightly drawn held by it: the first resume outside any stall shows it running.
    stalls = of_kind(async_io_run, "loop.blocked")
    resumed = min(
        (
            e
            for e in of_kind(async_io_run, "await.resumed")
            if not any(s["started_ns"] <= e["t_ns"] <= s["t_ns"] for s in stalls)
        ),
        key=lambda e: e["t_ns"],
    )
    others = {
        r["id"]
        for r in async_io_run["requests"]
        if r["received_ns"] <= resumed["t_ns"] <= r["finished_ns"]
    } - {resumed["request"]}
    assert others

    html = panels_at(async_io_run, resumed["seq"])

    assert 'class="picture-loop loop-running"' in html
    assert (
        f'<span class="chip">{resumed["request"]}</span> runs on it, at line {resumed["line"]}'
        in html
    )
    suspended = lane(html, "awaiting") + lane(html, "ready")
    for other in others:
        assert f"<strong>{other}</strong>" in suspended
    assert "awaits fetch_data(delay_ms)" in lane(html, "awaiting") or lane(html, "ready")
    # One clock: every instant is said in ms since the run began.
    assert re.search(r"since \d+(\.\d)? ms", suspended)


def test_it_shows_the_threads_blocked_while_the_loop_runs_none_of_them(sync_io_run):
    first_done = min(of_kind(sync_io_run, "call.blocking"), key=lambda e: e["t_ns"])

    html = panels_at(sync_io_run, first_done["seq"])

    threads = lane(html, "threads")
    assert threads.count("blocked in fetch_data_blocking") >= REQUESTS - 1
    assert "loop-running" not in html and "loop-held" not in html


def test_under_wsgi_it_shows_the_workers_and_the_queue_not_a_loop(wsgi_sync_io_run):
    # While the first request is served (one worker, one thread), the others queue.
    call = min(of_kind(wsgi_sync_io_run, "call.blocking"), key=lambda e: e["t_ns"])

    html = panels_at(wsgi_sync_io_run, call["seq"])

    assert "Event loop" not in html and "loop-none" in html
    assert "WSGI: 1 worker process \N{MULTIPLICATION SIGN} 1 thread each" in html
    queued = lane(html, "queued")
    assert "Queued, not yet taken by a worker" in queued
    assert queued.count("<strong>") == REQUESTS - 1
    assert "blocked in fetch_data_blocking" in lane(html, "threads")


def test_the_picture_moves_with_the_step(async_cpu_run):
    pictures_seen = {picture_text(panels_at(async_cpu_run, step)) for step in (1, 10, 25, 40)}
    assert len(pictures_seen) == 4


@pytest.mark.django_db
def test_the_page_without_javascript_draws_the_picture_of_its_step():
    trace = import_trace((EXAMPLES_DIR / "async-cpu-4-requests.json").read_bytes())
    document = trace.document()
    stall = next(e for e in document["events"] if e["kind"] == "loop.blocked")
    client = Client()

    at_stall = client.get(f"/traces/{trace.recording_id}/?step={stall['seq']}", follow=True)
    at_start = client.get(f"/traces/{trace.recording_id}/?step=1", follow=True)

    assert "loop-held" in at_stall.content.decode()
    assert picture_text(at_stall.content.decode()) != picture_text(at_start.content.decode())
    # Where the time went, and the verdict, are on the page too.
    assert "Where the time went" in at_stall.content.decode()
    assert 'class="verdict"' in at_stall.content.decode()


HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.mark.django_db
def test_text_from_an_imported_trace_is_escaped_in_the_picture_and_bars():
    document = json.loads((EXAMPLES_DIR / "async-io-4-requests.json").read_bytes())
    for event in document["events"]:
        if event.get("awaiting"):
            event["awaiting"] = HOSTILE
        if event["kind"] == "loop.blocked" or event["kind"] == "call.blocking":
            event["callable"] = HOSTILE
    document["id"] = "hostile-picture"
    trace = import_trace(json.dumps(document).encode())
    # At the last request's await, all four are suspended at theirs.
    suspended = [e for e in document["events"] if e["kind"] == "await.suspended"][-1]

    page = Client().get(f"/traces/{trace.recording_id}/?step={suspended['seq']}", follow=True)
    html = page.content.decode()

    assert "<img" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in picture_text(html)


def test_a_hostile_request_id_is_escaped_everywhere_it_is_drawn():
    document = json.loads((EXAMPLES_DIR / "async-cpu-4-requests.json").read_bytes())
    document = copy.deepcopy(document)
    for request in document["requests"]:
        if request["id"] == "r1":
            request["id"] = HOSTILE
    for event in document["events"]:
        if event["request"] == "r1":
            event["request"] = HOSTILE
    document["id"] = "hostile-request-id"
    stall = next(e for e in document["events"] if e["kind"] == "loop.blocked")

    html = panels_at(document, stall["seq"])
    bars = render_to_string(
        "includes/time_went.html", {"time_went": time_went(document), "time_went_suffix": ""}
    )

    for rendered in (html, bars):
        assert "<img" not in rendered
        assert "&lt;img" in rendered


@pytest.mark.parametrize(
    "run", ["async_io_run", "sync_io_run", "async_cpu_run", "wsgi_sync_io_run"]
)
def test_each_bar_is_split_into_parts_that_fill_it_exactly(run, request):
    document = request.getfixturevalue(run)
    went = time_went(document)
    assert len(went.bars) == REQUESTS
    html = render_to_string("includes/time_went.html", {"time_went": went, "time_went_suffix": ""})
    bars = re.findall(r'<span class="bar" style="width: ([\d.]+)%".*?</span></span>', html, re.S)
    assert len(bars) == REQUESTS
    for bar in went.bars:
        assert sum(segment.width for segment in bar.segments) == WHOLE
    for drawn in re.findall(r'<span class="bar" [^>]*>(.*?)</span></span>', html, re.S):
        widths = [float(w) for w in re.findall(r"width: ([\d.]+)%", drawn)]
        assert abs(sum(widths) - 100) < 0.005
    # One axis: the longest request fills the width, the others are shorter.
    assert max(float(b) for b in bars) == 100


def test_the_verdicts_of_the_three_core_scenarios_differ_as_their_runs_did(
    async_io_run, async_cpu_run, sync_io_run, wsgi_sync_io_run
):
    cpu = time_went(async_cpu_run).verdict
    io = time_went(async_io_run).verdict
    sync = time_went(sync_io_run).verdict
    wsgi = time_went(wsgi_sync_io_run).verdict
    assert cpu and io and sync and wsgi

    # async-cpu: a request was ready but waited while another computed on the loop.
    waited = next(s for s in cpu.sentences if "waiting for the event loop" in s)
    # The holder is named as the watchdog caught it: in count_primes, or in the view that
    # calls it (a sample taken between two of its calls).
    assert "count_primes" in waited or "ran async_cpu on the loop" in waited
    assert "scenario=async-offload" in cpu.next_url
    # async-io: the time was at the await, the loop free meanwhile.
    assert "suspended at an await" in io.sentences[0]
    assert "waiting for the event loop" not in io.sentences[0]
    # sync-io under ASGI: blocked in its own thread, not on the loop.
    assert "blocked in a thread" in sync.sentences[0] and "not the event loop" in sync.sentences[0]
    # sync-io under WSGI 1x1: the requests queued for the one thread, and no loop is said.
    assert "before the server took it" in wsgi.sentences[1]
    assert "1 worker \N{MULTIPLICATION SIGN} 1 thread" in wsgi.sentences[1]
    assert "event loop" not in " ".join(wsgi.sentences)
    assert "threads=4" in wsgi.next_url
    for verdict in (cpu, io, sync, wsgi):
        assert verdict.next_url.startswith("/lab/?")


def test_one_request_is_said_without_a_comparison_it_does_not_have():
    document = json.loads((EXAMPLES_DIR / "sync-io-1-request.json").read_bytes())
    verdict = time_went(document).verdict
    assert verdict is not None
    assert verdict.sentences[0].startswith("The request (r1) spent")
    assert len(verdict.sentences) == 1
    assert "requests=4" in verdict.next_url


def test_the_cached_picture_reads_a_growing_document_on_and_a_new_one_afresh(async_io_run):
    document = copy.deepcopy(async_io_run)  # not the one other tests have shown
    half = len(document["events"]) // 2
    early = DocumentSource({**document, "events": document["events"][:half]})
    first = pictures.read(early, lambda p: p)
    assert len(first.events) == half

    grown = pictures.read(DocumentSource(document), lambda p: p)
    assert grown is first and len(grown.events) == len(document["events"])

    other = copy.deepcopy(document)
    assert pictures.read(DocumentSource(other), lambda p: p) is not first
