"""Key moments come from the trace's events, so they change when the trace does."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.fixtures import VERSION_1_EXAMPLES
from visualizer.traces.library import EXAMPLES_DIR, load_examples
from visualizer.traces.moments import key_moments
from visualizer.traces.narration import context_of_document
from visualizer.traces.steps import ms

EXAMPLES = EXAMPLES_DIR


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_bytes())


def moments(document: dict) -> list:
    return key_moments(document["events"], document["requests"], context_of_document(document))


def test_the_longest_await_is_the_moment_the_loop_is_freed():
    document = example("async-io-4-requests")
    longest = max(
        (e for e in document["events"] if e["kind"] == "await.resumed"),
        key=lambda e: e["duration_ns"],
    )
    found = moments(document)

    pause = next(m for m in found if "pauses at await fetch_data(delay_ms)" in m.title)
    assert pause.request == longest["request"]
    suspended = document["events"][pause.step - 1]
    assert suspended["kind"] == "await.suspended" and suspended["request"] == longest["request"]
    assert found[0].title == "Django checks what kind of view it has"
    assert [m.step for m in found] == sorted(m.step for m in found)

    # Make another request's await the longest: the moment moves to it.
    other = next(
        e
        for e in document["events"]
        if e["kind"] == "await.resumed" and e["request"] != longest["request"]
    )
    other["duration_ns"] = longest["duration_ns"] + 1
    moved = next(m for m in moments(document) if "pauses at await" in m.title)
    assert moved.request == other["request"]


def test_a_sync_view_shows_the_hand_off_and_the_thread_it_holds():
    found = moments(example("sync-io-4-requests"))
    titles = [m.title for m in found]

    assert any(t.startswith("Django hands request") for t in titles)
    assert any(t.startswith("fetch_data_blocking holds thread") for t in titles)
    assert not any("event loop" in t for t in titles)


def test_a_stall_names_its_cause_and_the_requests_that_waited():
    # A recording kept as it was made: the line and the requests are its own.
    document = json.loads((VERSION_1_EXAMPLES / "async-cpu-4-requests.json").read_bytes())
    found = moments(document)

    stall = next(m for m in found if m.title.startswith("The event loop stalls"))
    assert "count_primes() at line 43" in stall.explanation
    assert "Requests r2, r3, r4 were in the server and had to wait." in stall.explanation
    assert any(m.title.startswith("count_primes blocks the event loop") for m in found)

    document["events"] = [e for e in document["events"] if e["kind"] != "loop.blocked"]
    assert not any(m.title.startswith("The event loop stalls") for m in moments(document))


@pytest.mark.django_db
def test_the_player_marks_the_key_moments_with_links_to_their_steps():
    load_examples()
    steps = [m.step for m in moments(example("async-cpu-4-requests"))]
    url = "/scenarios/async-cpu/?recording=example-async-cpu-4-requests"
    text = Client().get(f"{url}&step={steps[0]}").content.decode()

    assert 'id="key-moments"' in text
    assert "count_primes blocks the event loop" in text
    assert 'aria-current="step"' in text.split('id="key-moments"')[1].split("</section>")[0]
    assert f"recording=example-async-cpu-4-requests&amp;step={steps[-1]}" in text


@pytest.mark.django_db
def test_every_scenario_has_a_summary_card_with_what_the_trace_measured():
    from visualizer.scenarios.catalog import SCENARIOS

    load_examples()
    assert all(2 <= len(s.keep) <= 3 for s in SCENARIOS.values())
    page = Client().get("/scenarios/sync-io/?recording=example-sync-io-4-requests").content.decode()
    document = example("sync-io-4-requests")
    slowest = max(r["finished_ns"] - r["received_ns"] for r in document["requests"]) / 1e6

    assert "Summary card: what to keep" in page
    assert SCENARIOS["sync-io"].keep[0] in page
    assert f"4 requests; the slowest took {slowest:.0f} ms" in page
    assert "at most 4 were in the server at once" in page


def test_a_view_that_answers_with_an_error_is_a_key_moment():
    document = example("async-io-1-request")
    returned = next(e for e in document["events"] if e["kind"] == "view.returned")
    assert not any("server error" in m.title for m in moments(document))

    returned["returned"] = "<JsonResponse status=500>"
    returned["locals"]["problem"] = "'SynchronousOnlyOperation: You cannot call this'"
    failed = next(m for m in moments(document) if "server error" in m.title)
    assert failed.step == returned["seq"]
    assert "problem = 'SynchronousOnlyOperation" in failed.explanation


def test_a_view_that_never_paused_or_blocked_shows_how_long_it_held_its_thread():
    document = example("async-io-1-request")
    document["events"] = [e for e in document["events"] if not e["kind"].startswith("await.")]
    started = next(e for e in document["events"] if e["kind"] == "view.started")
    returned = next(e for e in document["events"] if e["kind"] == "view.returned")
    found = moments(document)

    assert len(found) == 2
    ran = found[1]
    assert ran.step == returned["seq"]
    assert f"returns {ms(returned['t_ns'] - started['t_ns'])} after" in ran.title
    assert "kept the event loop to itself" in ran.explanation


def test_an_awaited_call_is_not_a_blocking_call(offload_trace):
    # A real async-offload trace in which setting up asyncio.to_thread(...) was slow on
    # the loop: that is no call made without await, whatever it took.
    found = moments(offload_trace)

    assert not any("without await" in m.explanation for m in found)
    assert not any(m.title.startswith("asyncio.threads.to_thread blocks") for m in found)
