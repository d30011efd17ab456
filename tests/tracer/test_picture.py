"""The state of the server at chosen steps (tracer/picture.py), on real recorded runs: who is
on the event loop, who is suspended or ready, which threads are blocked or parked, who is
still waiting to be served."""

from __future__ import annotations

from typing import Any

import pytest

from bench.common import tile
from tests.conftest import of_kind
from tests.tracer.conftest import REQUESTS, without_loop_data
from tracer.breakdown import breakdowns
from tracer.picture import Picture, State, state_at


def by_request(state: State) -> dict[str, Any]:
    return {r.request: r for r in state.requests}


def threads_of(state: State, request: str) -> list[Any]:
    return [t for t in state.threads if t.request == request]


def first_resume(document: dict[str, Any]) -> dict[str, Any]:
    return min(of_kind(document, "await.resumed"), key=lambda e: e["t_ns"])


def test_async_io_at_the_first_resume_the_others_are_suspended_at_their_await(async_io_run):
    resumed = first_resume(async_io_run)
    suspended = {e["request"]: e for e in of_kind(async_io_run, "await.suspended")}
    # The awaits overlapped: every request was at its await when the first one went on.
    assert max(e["t_ns"] for e in suspended.values()) < resumed["t_ns"]

    state = state_at(async_io_run, resumed["seq"])

    assert state.interface == "asgi" and state.wsgi is None
    assert state.loop is not None and state.loop.known
    assert state.loop.running == resumed["request"]
    assert state.loop.location is not None and state.loop.location[2] == resumed["line"]
    requests = by_request(state)
    assert requests[resumed["request"]].state == "running"
    others = [r for r in requests.values() if r.request != resumed["request"]]
    assert len(others) == REQUESTS - 1
    for other in others:
        # Suspended at the view's await, or already ready to go on (its answer is in and
        # it waits for the loop): never running, the loop runs the first.
        assert other.state in ("awaiting", "ready")
        assert other.awaiting == "fetch_data(delay_ms)"
        if other.state == "awaiting":
            assert other.since_ns == suspended[other.request]["t_ns"]
        # Its own thread (Django's per-request executor) is parked, not blocked.
        assert [t.state for t in threads_of(state, other.request)] == ["parked"]


def test_sync_io_every_thread_is_blocked_and_the_loop_runs_none_of_them(sync_io_run):
    calls = of_kind(sync_io_run, "call.blocking")
    assert len(calls) == REQUESTS
    starts = [c["t_ns"] - c["duration_ns"] for c in calls]
    # The blocking calls overlapped: at the latest start, all were waiting.
    assert max(starts) < min(c["t_ns"] for c in calls)
    picture = Picture(sync_io_run)

    state = picture.state_at(len(sync_io_run["events"]), t_ns=max(starts) + 1)

    assert state.loop is not None and state.loop.known
    assert state.loop.running is None
    requests = by_request(state)
    assert {r.state for r in requests.values()} == {"in_thread"}
    blocked = [t for t in state.threads if t.state == "blocked"]
    assert {t.request for t in blocked} == set(requests)
    assert {t.thread for t in blocked} == {c["thread"] for c in calls}
    assert {t.doing for t in blocked} == {"fetch_data_blocking"}
    assert all(requests[t.request].thread == t.thread for t in blocked)


def test_async_cpu_a_ready_request_waits_while_another_computes_on_the_loop(async_cpu_run):
    waiting = max(breakdowns(async_cpu_run), key=lambda b: b.parts["loop_wait"]).request
    steps = next(r for r in async_cpu_run["requests"] if r["id"] == waiting)["loop_steps"]
    ready, started, _ = max(steps, key=lambda step: step[1] - step[0])
    # The middle of the longest time another request's step held the loop meanwhile (on
    # a busy machine the loop can also run Daphne's own callbacks, or none, during it).
    held = [
        (max(ready, step[1]), min(started, step[2]))
        for r in async_cpu_run["requests"]
        if r["id"] != waiting
        for step in r["loop_steps"]
    ]
    held_from, held_until = max(held, key=lambda span: span[1] - span[0])
    assert held_until > held_from
    middle = (held_from + held_until) // 2
    picture = Picture(async_cpu_run)

    state = picture.state_at(1, t_ns=middle)

    requests = by_request(state)
    assert requests[waiting].state == "ready"
    assert requests[waiting].since_ns == ready
    assert state.loop is not None
    computing = state.loop.running
    assert computing is not None and computing != waiting
    assert [r.request for r in requests.values() if r.state == "running"] == [computing]
    # It holds the loop in its count_primes, as the trace's stall says.
    assert state.loop.stall is not None and state.loop.stall.request == computing
    assert state.loop.location is not None
    assert state.loop.location[1] in ("count_primes", "async_cpu")


def test_async_cpu_at_a_slow_calls_step_its_request_is_on_the_loop(async_cpu_run):
    picture = Picture(async_cpu_run)
    for call in of_kind(async_cpu_run, "call.blocking"):
        state = picture.state_at(call["seq"])
        assert state.loop is not None
        assert state.loop.running == call["request"]
        assert by_request(state)[call["request"]].location == (
            call["file"],
            call["function"],
            call["line"],
        )


def test_wsgi_one_thread_serves_one_request_and_the_others_queue(wsgi_sync_io_run):
    served = sorted(wsgi_sync_io_run["requests"], key=lambda r: r["received_ns"])
    second = served[1]
    call = of_kind(wsgi_sync_io_run, "call.blocking", second["id"])[0]
    during = call["t_ns"] - call["duration_ns"] // 2

    state = Picture(wsgi_sync_io_run).state_at(call["seq"], t_ns=during)

    assert state.interface == "wsgi" and state.loop is None
    assert state.wsgi is not None
    assert (state.wsgi.workers, state.wsgi.threads_per_worker) == (1, 1)
    requests = by_request(state)
    assert requests[second["id"]].state == "in_thread"
    # One thread, blocked in the view's call for the second request.
    assert [(t.request, t.state, t.doing) for t in state.threads] == [
        (second["id"], "blocked", "fetch_data_blocking")
    ]
    # The ones taken after it were sent with it and wait to be served.
    for later in served[2:]:
        assert requests[later["id"]].state == "queued"
        assert requests[later["id"]].since_ns == later["client_sent_ns"]
    assert served[0]["id"] not in requests or requests[served[0]["id"]].state == "answered"


def test_an_older_trace_cannot_tell_awaiting_from_ready(async_io_run):
    older = without_loop_data(async_io_run)
    resumed = first_resume(older)

    state = state_at(older, resumed["seq"])

    assert state.loop is not None and state.loop.running == resumed["request"]
    others = [r for r in state.requests if r.request != resumed["request"]]
    assert {r.state for r in others} == {"awaiting_or_ready"}


def test_a_growing_document_read_bit_by_bit_gives_the_same_states(async_cpu_run):
    whole = Picture(async_cpu_run)
    partial = {**async_cpu_run, "events": []}
    growing = Picture(partial)
    for event in async_cpu_run["events"]:
        partial["events"].append(event)
        growing.update(partial)

    for step in range(1, len(async_cpu_run["events"]) + 1):
        assert growing.state_at(step) == whole.state_at(step)


@pytest.mark.parametrize("run", ["async_io_run", "sync_io_run", "wsgi_sync_io_run"])
def test_a_long_trace_gives_each_step_the_states_of_looking_at_every_request(
    run, request, monkeypatch
):
    # 30 copies of a real run, one after another: a step looks only at the requests around
    # its time (tracer/picture.py's _TimeIndex); it must see what looking at all would.
    long = tile(request.getfixturevalue(run), 30 * len(request.getfixturevalue(run)["events"]))
    indexed = Picture(long)
    states = [indexed.state_at(step) for step in range(1, len(long["events"]) + 1, 7)]
    everything = Picture(long)
    monkeypatch.setattr(everything._time_index(), "around", lambda t: everything.requests.values())
    assert states == [everything.state_at(step) for step in range(1, len(long["events"]) + 1, 7)]
    assert indexed.run_start_ns == min(
        t for r in long["requests"] for t in (r.get("client_sent_ns"), r["received_ns"]) if t
    )


def test_steps_are_clamped_and_an_empty_trace_has_no_state(async_io_run):
    picture = Picture(async_io_run)
    assert picture.state_at(0).step == 1
    assert picture.state_at(10**6).step == len(async_io_run["events"])
    with pytest.raises(ValueError, match="no events"):
        Picture({**async_io_run, "events": []}).state_at(1)
