"""Each suggested edit, run for real in the sandbox through the scenario page (its link's
code, as the page pre-fills it without JavaScript), changes the trace as its lesson says,
next to a run of the scenario's own code.

No timings are compared: on a busy machine they say little. What is asserted is where the
code ran and what the tracer saw it do: which thread, which awaits, which stalls of the
loop and what held the loop in them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.visualizer.playground.conftest import post_edit, recording_of, stalls_of_the_code
from tests.visualizer.playground.test_suggestions import EVERY_SUGGESTION, textarea_of
from tracer import events
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.server_process import DaphneServer

Document = dict[str, Any]
REQUESTS = "2"
# async-file reads its default, the whole 64 MB file: long enough to be seen on any disk.
PARAMETERS = {"delay_ms": "200", "work": "60000"}


def of_kind(document: Document, kind: str) -> list[dict[str, Any]]:
    return [e for e in document["events"] if e["kind"] == kind]


def loop_thread(document: Document) -> str:
    """The event loop's thread: where Django checked the view's type, for every request."""
    [thread] = {e["thread"] for e in of_kind(document, events.VIEW_TYPE_CHECKED)}
    return thread


def view_runs_on(document: Document) -> set[str]:
    return {e["runs_on"] for e in of_kind(document, events.VIEW_TYPE_CHECKED)}


def pauses_per_request(document: Document) -> list[int]:
    """How many times each request's view paused at an await of its own."""
    view = document["requests"][0]["view"].rpartition(".")[2]
    counts = {r["id"]: 0 for r in document["requests"]}
    for event in of_kind(document, events.AWAIT_SUSPENDED):
        if event["function"] == view:
            counts[event["request"]] += 1
    return sorted(counts.values())


def stalls_held_by(document: Document, *functions: str) -> list[dict[str, Any]]:
    """The loop's stalls in which the loop's thread was in one of ``functions``."""
    return [
        e
        for e in of_kind(document, events.LOOP_BLOCKED)
        if e["held_by"] in functions
        or any(frame["function"] in functions for frame in e.get("stack", []))
    ]


def blocking_on_loop(document: Document, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in of_kind(document, events.CALL_BLOCKING)
        if e["on_event_loop"] and e["callable"].rpartition(".")[2] == name
    ]


def offloaded(document: Document, function: str) -> list[dict[str, Any]]:
    """The hand-offs of ``function`` to a worker thread by asyncio.to_thread."""
    return [
        e
        for e in of_kind(document, events.THREAD_HOP)
        if e["adapter"] == events.ADAPTER_TO_THREAD and e["target"].endswith(f".{function}")
    ]


def statuses(document: Document) -> list[int | None]:
    return [r["status"] for r in document["requests"]]


# -- what each edit's lesson says, as the trace shows it --------------------------------


def blocking_client_blocks_the_loop(original: Document, edited: Document) -> None:
    assert pauses_per_request(original) == [1, 1]
    assert stalls_held_by(original, "urllib.request.urlopen", "fetch_data_blocking") == []
    # No await: the loop's thread waits in urlopen, once per request.
    assert pauses_per_request(edited) == [0, 0]
    assert len(stalls_held_by(edited, "urllib.request.urlopen", "fetch_data_blocking")) == 2
    assert len(blocking_on_loop(edited, "fetch_data_blocking")) == 2


def async_client_runs_on_the_loop(original: Document, edited: Document) -> None:
    assert view_runs_on(original) == {"worker_thread"}
    assert len(of_kind(original, events.THREAD_HANDOFF)) == 2
    assert view_runs_on(edited) == {"event_loop"}
    assert of_kind(edited, events.THREAD_HANDOFF) == []
    assert {e["thread"] for e in of_kind(edited, events.VIEW_STARTED)} == {loop_thread(edited)}
    assert pauses_per_request(edited) == [1, 1]


def computing_moves_to_a_thread(original: Document, edited: Document) -> None:
    # On the loop: the loop's thread computes count_primes, and stalls while it does.
    assert stalls_held_by(original, "count_primes", "async_cpu")
    assert len(blocking_on_loop(original, "count_primes")) == 2
    assert offloaded(original, "count_primes") == []
    # Edited: each request's view pauses at the await, and count_primes runs in a worker
    # thread, computing there.
    suspended = of_kind(edited, events.AWAIT_SUSPENDED)
    assert [e["awaiting"] for e in suspended] == ["asyncio.to_thread(count_primes, limit)"] * 2
    hops = offloaded(edited, "count_primes")
    assert sorted(e["request"] for e in hops) == sorted(r["id"] for r in edited["requests"])
    assert all(e["to_thread"] != loop_thread(edited) and e["cpu_ns"] > 0 for e in hops)
    # The loop's thread never computes it. (The loop may still be slow at moments, waiting
    # for the GIL while a worker thread computes: the tracer records such a stall with
    # cause "gil", held by whatever the loop was doing, never by count_primes.)
    assert stalls_held_by(edited, "count_primes") == []
    assert blocking_on_loop(edited, "count_primes") == []


def computing_comes_back_to_the_loop(original: Document, edited: Document) -> None:
    computing_moves_to_a_thread(edited, original)


def gathered_calls_pause_once(in_turn: Document, gathered: Document) -> None:
    assert pauses_per_request(in_turn) == [3, 3]
    assert pauses_per_request(gathered) == [1, 1]
    awaited = {e["awaiting"] for e in of_kind(gathered, events.AWAIT_SUSPENDED)}
    assert awaited == {
        "asyncio.gather(fetch_data(delay_ms), fetch_data(delay_ms), fetch_data(delay_ms))"
    }


def calls_in_turn_pause_three_times(original: Document, edited: Document) -> None:
    gathered_calls_pause_once(edited, original)


def awaited_query_answers(original: Document, edited: Document) -> None:
    # Django refused the sync query (the view's own except answers 500).
    assert statuses(original) == [500, 500]
    assert statuses(edited) == [200, 200]
    assert pauses_per_request(edited) == [1, 1]
    queries = [e for e in of_kind(edited, events.THREAD_HOP) if e["purpose"] == events.HOP_DATABASE]
    assert len(queries) == 2
    assert all(e["to_thread"] != loop_thread(edited) for e in queries)
    assert edited["code"]["errors"] == []


def sync_query_is_refused(original: Document, edited: Document) -> None:
    assert statuses(original) == [200, 200]
    assert statuses(edited) == [500, 500]
    line = edited["code"]["text"].splitlines().index("    readings = Reading.objects.count()") + 1
    assert edited["code"]["errors"] == [
        {
            "line": line,
            "message": "SynchronousOnlyOperation: You cannot call this from an async context "
            "- use a thread or sync_to_async.",
        }
    ]


def file_read_moves_to_a_thread(original: Document, edited: Document) -> None:
    assert len(blocking_on_loop(original, "read_file")) == 2
    assert offloaded(original, "read_file") == []
    hops = offloaded(edited, "read_file")
    assert len(hops) == 2
    assert all(e["to_thread"] != loop_thread(edited) for e in hops)
    assert blocking_on_loop(edited, "read_file") == []
    assert stalls_held_by(edited, "read_file") == []
    assert pauses_per_request(edited) == [1, 1]


def sleep_pauses_instead(original: Document, edited: Document) -> None:
    assert len(stalls_held_by(original, "time.sleep")) == 2
    assert len(stalls_of_the_code(original)) == 2
    # No stall of the loop is the view's any more (conftest.stalls_of_the_code).
    assert stalls_of_the_code(edited) == []
    assert stalls_held_by(edited, "time.sleep") == []
    assert pauses_per_request(edited) == [1, 1]


LESSONS: dict[tuple[str, str], Callable[[Document, Document], None]] = {
    ("async-io", "blocking-client"): blocking_client_blocks_the_loop,
    ("sync-io", "async-client"): async_client_runs_on_the_loop,
    ("async-cpu", "to-thread"): computing_moves_to_a_thread,
    ("async-offload", "on-the-loop"): computing_comes_back_to_the_loop,
    ("async-gather", "in-turn"): calls_in_turn_pause_three_times,
    ("async-sequential", "gather"): gathered_calls_pause_once,
    ("async-orm-sync", "acount"): awaited_query_answers,
    ("async-orm-sync", "sync-to-async"): awaited_query_answers,
    ("async-orm", "sync-query"): sync_query_is_refused,
    ("async-file", "to-thread"): file_read_moves_to_a_thread,
    ("async-sleep", "asyncio-sleep"): sleep_pauses_instead,
}


def test_every_suggested_edit_has_its_lesson_checked():
    assert sorted(LESSONS) == sorted(EVERY_SUGGESTION)


class Runs:
    """Runs of the page's code, each made once for the module."""

    def __init__(self, server: DaphneServer) -> None:
        self.server = server
        self._done: dict[tuple[str, str], Document] = {}

    def of(self, scenario: str, suggestion: str = "") -> Document:
        key = (scenario, suggestion)
        if key not in self._done:
            query = {"suggestion": suggestion} if suggestion else {}
            page = httpx.get(
                f"{self.server.base_url}/scenarios/{scenario}/", params=query, timeout=30
            )
            fields = {k: v for k, v in PARAMETERS.items() if k in SCENARIOS[scenario].parameters}
            code = textarea_of(page.text)
            answer, shown = post_edit(self.server, scenario, code, requests=REQUESTS, **fields)
            said = answer.text.split('id="edit"', 1)[-1][:3000]
            assert answer.status_code == 302 and shown is not None, said
            document = recording_of(self.server, shown)
            assert document["code"]["text"] == code
            assert len(document["requests"]) == int(REQUESTS)
            self._done[key] = document
        return self._done[key]


@pytest.fixture(scope="module")
def runs(lesson_server: DaphneServer) -> Runs:
    return Runs(lesson_server)


@pytest.mark.parametrize(("scenario", "suggestion"), EVERY_SUGGESTION)
def test_the_suggested_edit_changes_the_trace_as_its_lesson_says(runs, scenario, suggestion):
    LESSONS[scenario, suggestion](runs.of(scenario), runs.of(scenario, suggestion))
