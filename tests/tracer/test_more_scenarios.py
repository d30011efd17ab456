"""The concurrency-lab scenarios, each traced through Daphne: what really happens."""

from __future__ import annotations

import json

from tests.conftest import kinds, of_kind, record
from tests.tracer.test_scenarios import line_of
from visualizer.scenarios import scenario_views


def total_ms(trace: dict) -> float:
    spans = [r["duration_ns"] for r in trace["requests"]]
    return max(spans) / 1_000_000


def test_gather_waits_once_for_three_calls(traced_server):
    trace = record(traced_server, "async-gather", delay_ms=200)

    resumed = of_kind(trace, "await.resumed")
    assert len(resumed) == 1
    assert resumed[0]["awaiting"] == (
        "asyncio.gather(fetch_data(delay_ms), fetch_data(delay_ms), fetch_data(delay_ms))"
    )
    assert 200_000_000 <= resumed[0]["duration_ns"] < 2 * 200_000_000
    returned = of_kind(trace, "view.returned")[0]["locals"]
    assert all("'waited_ms': 200" in returned[name] for name in ("first", "second", "third"))


def test_sequential_awaits_take_three_times_as_long(traced_server):
    trace = record(traced_server, "async-sequential", delay_ms=150)

    resumed = of_kind(trace, "await.resumed")
    assert [e["awaiting"] for e in resumed] == ["fetch_data(delay_ms)"] * 3
    assert len({e["line"] for e in resumed}) == 3
    assert all(e["duration_ns"] >= 150_000_000 for e in resumed)
    assert total_ms(trace) >= 3 * 150


def test_offloading_cpu_work_keeps_the_view_awaiting_not_blocking(traced_server):
    trace = record(traced_server, "async-offload", work=60_000)

    assert of_kind(trace, "await.suspended")[0]["awaiting"] == (
        "asyncio.to_thread(count_primes, limit)"
    )
    assert "'primes':" not in json.dumps(of_kind(trace, "await.suspended")[0]["locals"])
    assert of_kind(trace, "view.returned")[0]["locals"]["primes"] == "6057"


def test_concurrent_offloaded_work_makes_the_loop_wait_for_the_gil(traced_server):
    offload_line = line_of(scenario_views.async_offload, "asyncio.to_thread(")
    slow = []
    # Whether the loop wants the GIL while the workers compute depends on how the four
    # requests' arrivals fall against the workers' starts: a run can miss it. So up to
    # ten runs are recorded until one shows it (on a busy machine several can miss it);
    # what every run records must hold.
    for _ in range(10):
        # About 100-200 ms of computing each, in four worker threads at once.
        trace = record(traced_server, "async-offload", requests=4, work=25_000)
        computing = [
            (e["t_ns"] - e["duration_ns"], e["t_ns"])
            for e in of_kind(trace, "await.resumed")
            if e["awaiting"] == "asyncio.to_thread(count_primes, limit)"
        ]
        assert len(computing) == 4
        assert {e["locals"]["primes"] for e in of_kind(trace, "view.returned")} == {"2762"}
        # The loop thread slow while the workers computed: it waited for the GIL, or for
        # nothing of its own; it never computed.
        setups = [e for e in of_kind(trace, "call.blocking") if e["line"] == offload_line]
        stalls = [
            e
            for e in of_kind(trace, "loop.blocked")
            if any(e["started_ns"] < end and start < e["t_ns"] for start, end in computing)
        ]
        for event in setups + stalls:
            # "preempted": ready to run, it waited for a core (a busy machine); still never
            # computing.
            assert event["cause"] in ("gil", "waiting", "preempted"), event
            if event["cause"] == "gil":
                assert event["gil_thread"], event
        assert not [e for e in stalls if e["held_by"] == "count_primes"]
        slow += setups + stalls
        if slow:
            break
    assert slow, "the loop thread was never slow while the workers computed, in ten runs"


def test_sync_orm_in_an_async_view_raises_synchronous_only_operation(traced_server):
    trace = record(traced_server, "async-orm-sync")

    returned = of_kind(trace, "view.returned")[0]
    assert returned["returned"] == "<JsonResponse status=500>"
    assert returned["locals"]["problem"].startswith("'SynchronousOnlyOperation: You cannot")
    assert of_kind(trace, "response.started")[0]["status"] == 500


def test_async_orm_awaits_each_query(traced_server):
    trace = record(traced_server, "async-orm")

    awaited = [e["awaiting"] for e in of_kind(trace, "await.resumed")]
    assert awaited == ["Reading.objects.acount()", 'Reading.objects.order_by("-id").afirst()']
    assert of_kind(trace, "view.returned")[0]["locals"]["readings"] == "5"


def test_reading_a_file_in_an_async_view_runs_on_the_loop_without_pausing(traced_server):
    trace = record(traced_server, "async-file", size_kb=65536)

    # No await: open() and read() run on the event loop thread from start to finish.
    assert "await.suspended" not in kinds(trace)
    assert of_kind(trace, "view.started")[0]["thread"] == "MainThread"
    assert of_kind(trace, "view.returned")[0]["locals"]["size_kb"] == "65536"
    # A 64 MB read usually takes longer than the 10 ms threshold; when it does, the tracer
    # names it as a blocking call on the loop.
    for call in of_kind(trace, "call.blocking"):
        assert call["on_event_loop"] is True
    assert trace["requests"][0]["bytes"] == len('{"bytes": 67108864}')


def test_time_sleep_in_an_async_view_stalls_the_event_loop(traced_server):
    trace = record(traced_server, "async-sleep", requests=2, delay_ms=200)

    sleeps = of_kind(trace, "call.blocking")
    assert [e["callable"] for e in sleeps] == ["time.sleep", "time.sleep"]
    assert all(e["on_event_loop"] and e["waiting"] for e in sleeps)
    assert {e["cause"] for e in sleeps} == {"waiting"}
    stalls = of_kind(trace, "loop.blocked")
    assert {e["held_by"] for e in stalls} == {"time.sleep"}
    assert {e["culprit"] for e in stalls} == {"time.sleep"}
    assert {e["cause"] for e in stalls} == {"waiting"}
    sleep_line = line_of(scenario_views.async_sleep, "time.sleep(")
    assert {(e["function"], e["line"]) for e in stalls} == {("async_sleep", sleep_line)}
    # One request's sleep held the other back: from the first send to the last answer,
    # as the client saw it (a request sent during the first sleep reached the server only
    # after it), they took two sleeps' time.
    requests = trace["requests"]
    wall_ns = max(r["client_done_ns"] for r in requests) - min(
        r["client_sent_ns"] for r in requests
    )
    assert wall_ns >= 2 * 200 * 1_000_000
