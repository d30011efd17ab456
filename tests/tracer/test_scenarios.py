"""Real requests through Daphne and Django's ASGI handler, traced end to end."""

from __future__ import annotations

import inspect
import itertools

from tests.conftest import kinds, of_kind, record, without_short_stalls
from visualizer.scenarios import scenario_views


def line_of(function: object, text: str) -> int:
    lines, start = inspect.getsourcelines(function)  # type: ignore[arg-type]
    for offset, line in enumerate(lines):
        if text in line:
            return start + offset
    raise AssertionError(f"{text!r} not in the source")


def test_it_records_every_step_of_async_io_in_order(traced_server):
    trace = record(traced_server, "async-io", delay_ms=150)

    # A busy machine can add a short stall anywhere (see without_short_stalls); a stall as
    # long as the await would mean the wait was taken for one, and stays in.
    assert kinds(without_short_stalls(trace, 150)) == [
        "request.received",
        "thread.hop",  # Django's request_started receivers, in a thread of the request's
        "view.type_checked",
        "view.started",
        "await.suspended",
        "await.resumed",
        "view.returned",
        "response.started",
        "response.finished",
        "thread.hop",  # response.close(), in the same thread
    ]
    assert [e["seq"] for e in trace["events"]] == list(range(1, len(trace["events"]) + 1))
    checked = of_kind(trace, "view.type_checked")[0]
    assert checked["is_async"] is True
    assert checked["runs_on"] == "event_loop"
    await_line = line_of(scenario_views.async_io, "await fetch_data(")
    suspended, resumed = of_kind(trace, "await.suspended")[0], of_kind(trace, "await.resumed")[0]
    assert suspended["line"] == resumed["line"] == await_line
    assert suspended["awaiting"] == "fetch_data(delay_ms)"
    assert 150_000_000 <= resumed["duration_ns"] < 2_000_000_000
    assert of_kind(trace, "response.started")[0]["status"] == 200
    assert trace["scenario"]["slug"] == "async-io"
    assert trace["requests"][0]["status"] == 200
    # Daphne wrote the last byte after the view handed it over, before the client had it.
    request = trace["requests"][0]
    assert request["finished_ns"] <= request["sent_ns"] <= request["client_done_ns"]


def test_it_shows_data_unset_before_the_await_and_fetched_after(traced_server):
    trace = record(traced_server, "async-io", delay_ms=50)

    suspended = of_kind(trace, "await.suspended")[0]
    assert "data" not in suspended["locals"]
    assert suspended["locals"]["delay_ms"] == "50"
    for kind in ("await.resumed", "view.returned"):
        data = of_kind(trace, kind)[0]["locals"]["data"]
        assert "'waited_ms': 50" in data and "'reading':" in data


def test_it_records_the_sync_view_handed_to_a_worker_thread(traced_server):
    trace = record(traced_server, "sync-io", delay_ms=100)

    assert kinds(without_short_stalls(trace, 100)) == [
        "request.received",
        "thread.hop",  # request_started
        "view.type_checked",
        "thread.handoff",
        "view.started",
        "call.blocking",
        "view.returned",
        "thread.hop",  # the view's own hop, recorded when it is back
        "response.started",
        "response.finished",
        "thread.hop",  # response.close()
    ]
    checked = of_kind(trace, "view.type_checked")[0]
    assert checked["is_async"] is False
    assert checked["adapter"] == "sync_to_async(thread_sensitive=True)"
    handoff = of_kind(trace, "thread.handoff")[0]
    assert handoff["from_thread"] == "MainThread"
    assert handoff["to_thread"] != "MainThread"
    blocking = of_kind(trace, "call.blocking")[0]
    assert blocking["callable"] == "fetch_data_blocking"
    assert blocking["thread"] == handoff["to_thread"]
    assert blocking["on_event_loop"] is False
    assert blocking["waiting"] is True
    assert blocking["duration_ns"] >= 100_000_000
    assert blocking["line"] == line_of(scenario_views.sync_io, "fetch_data_blocking(")


def test_it_overlaps_concurrent_async_io_and_keeps_requests_apart(traced_server):
    trace = record(traced_server, "async-io", requests=4, delay_ms=300)

    assert len(trace["requests"]) == 4
    # Four 300 ms waits overlap: every request was waiting before the first answer came
    # back (told by the trace, not by the wall clock, which a busy machine stretches).
    spans = [
        (
            of_kind(trace, "await.suspended", r["id"])[0]["t_ns"],
            of_kind(trace, "await.resumed", r["id"])[0]["t_ns"],
        )
        for r in trace["requests"]
    ]
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    # Each request's events carry its own task, and its own fetched value.
    readings = set()
    for request in trace["requests"]:
        mine = [e for e in trace["events"] if e["request"] == request["id"]]
        assert len({e["task"] for e in mine}) == 1
        readings.add(of_kind(trace, "view.returned", request["id"])[0]["locals"]["data"])
    assert len(readings) == 4
    assert len({e["task"] for e in trace["events"]}) == 4


def test_it_runs_concurrent_async_cpu_one_at_a_time_and_names_the_culprit(traced_server):
    trace = record(traced_server, "async-cpu", requests=4, work=60_000)

    spans = sorted(
        (
            of_kind(trace, "view.started", r["id"])[0]["t_ns"],
            of_kind(trace, "view.returned", r["id"])[0]["t_ns"],
        )
        for r in trace["requests"]
    )
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end <= next_start
    # One stall per request, held by its computation; a busy machine may add short ones
    # held by other code (Django's, Daphne's), which are not counted here.
    stalls = [s for s in of_kind(trace, "loop.blocked") if s["held_by"] == "count_primes"]
    assert len(stalls) == 4
    call_line = line_of(scenario_views.async_cpu, "count_primes(")
    lines, first = inspect.getsourcelines(scenario_views.count_primes)
    for stall in stalls:
        # The loop thread's stack: the view at its call, count_primes running inside it.
        assert stall["function"] == "count_primes"
        assert first <= stall["line"] < first + len(lines)
        assert stall["held_by"] == "count_primes"
        assert stall["culprit"] == "visualizer.scenarios.scenario_views.count_primes"
        views = [frame for frame in stall["stack"] if frame["function"] == "async_cpu"]
        assert [frame["line"] for frame in views] == [call_line]
        # Computing; on a machine busy with other work the loop thread can get so little of
        # a core that the tracer tells the stall as preempted. Never a wait.
        assert stall["cause"] in ("computing", "preempted")
        assert stall["duration_ns"] >= 20_000_000
    assert {s["request"] for s in stalls} == {r["id"] for r in trace["requests"]}


def test_it_runs_concurrent_sync_io_on_parallel_worker_threads(traced_server):
    trace = record(traced_server, "sync-io", requests=4, delay_ms=300)

    threads = {of_kind(trace, "view.started", r["id"])[0]["thread"] for r in trace["requests"]}
    assert len(threads) == 4
    assert "MainThread" not in threads
    spans = [
        (
            of_kind(trace, "view.started", r["id"])[0]["t_ns"],
            of_kind(trace, "view.returned", r["id"])[0]["t_ns"],
        )
        for r in trace["requests"]
    ]
    assert max(start for start, _ in spans) < min(end for _, end in spans)
