"""Where each request's time went (tracer/breakdown.py), on real recorded runs: the parts add
up to each request's latency, and they show the lesson of each scenario."""

from __future__ import annotations

import statistics
from typing import Any

from tests.conftest import of_kind
from tests.tracer.conftest import DELAY_MS, REQUESTS, without_loop_data
from tracer.breakdown import PART_LABELS, PARTS, Breakdown, breakdowns

DELAY_NS = DELAY_MS * 1_000_000


def assert_they_add_up(found: list[Breakdown], document: dict[str, Any]) -> None:
    assert [b.request for b in found] == [r["id"] for r in document["requests"]]
    for breakdown, request in zip(found, document["requests"], strict=True):
        assert breakdown.duration_ns == request["duration_ns"]
        assert list(breakdown.parts) == list(PARTS)
        assert all(ns >= 0 for ns in breakdown.parts.values())
        assert (
            abs(sum(breakdown.parts.values()) - request["duration_ns"])
            <= request["duration_ns"] * 0.01
        )


def test_every_part_has_a_label():
    assert set(PART_LABELS) == set(PARTS)


def test_async_io_is_mostly_awaiting_io_and_waits_little_for_the_loop(async_io_run):
    found = breakdowns(async_io_run)

    assert_they_add_up(found, async_io_run)
    for breakdown in found:
        parts = breakdown.parts
        assert breakdown.loop_measured
        # The upstream's delay, awaited: the request was not ready meanwhile.
        assert parts["awaiting_io"] >= 0.9 * DELAY_NS
        assert parts["loop_wait"] < parts["awaiting_io"] / 4
        # What the tracer measured on the loop is what the breakdown counts there.
        request = next(r for r in async_io_run["requests"] if r["id"] == breakdown.request)
        on_the_loop = parts["on_loop"] + parts["blocked_on_loop"] + parts["gil_wait"]
        assert on_the_loop + parts["core_wait"] <= request["loop_ns"] + 1
        assert parts["loop_wait"] == request["loop_wait_ns"]
        assert parts["in_thread"] + parts["blocked_in_thread"] < parts["awaiting_io"] / 4


def test_async_cpu_requests_wait_for_the_loop_while_another_computes(async_cpu_run):
    found = breakdowns(async_cpu_run)

    assert_they_add_up(found, async_cpu_run)
    computing = [
        call["duration_ns"]
        for call in of_kind(async_cpu_run, "call.blocking")
        if call["callable"] == "count_primes"
    ]
    assert len(computing) == REQUESTS
    longest_wait = max(found, key=lambda b: b.parts["loop_wait"])
    # Ready to go on (its thread had answered, or the loop had read it) while another
    # request's count_primes held the loop.
    assert longest_wait.parts["loop_wait"] >= 0.5 * statistics.median(computing)
    waiting = next(r for r in async_cpu_run["requests"] if r["id"] == longest_wait.request)
    held = [
        stall
        for stall in of_kind(async_cpu_run, "loop.blocked")
        if stall["request"] not in (None, waiting["id"])
    ]
    ready, started, _ = max(waiting["loop_steps"], key=lambda step: step[1] - step[0])
    assert any(s["started_ns"] < started and s["t_ns"] > ready for s in held)
    # Each request held the loop itself, for about its count_primes (computing, or on a
    # busy machine partly waiting for a core or the GIL).
    for breakdown in found:
        parts = breakdown.parts
        held_the_loop = parts["on_loop"] + parts["core_wait"] + parts["gil_wait"]
        assert held_the_loop >= 0.9 * min(computing)


def test_sync_io_is_blocked_in_its_own_thread(sync_io_run):
    found = breakdowns(sync_io_run)

    assert_they_add_up(found, sync_io_run)
    for breakdown in found:
        assert breakdown.parts["blocked_in_thread"] >= 0.9 * DELAY_NS
        assert breakdown.parts["awaiting_io"] < DELAY_NS / 4
        assert breakdown.thread_cpu_ns < breakdown.parts["blocked_in_thread"]


def test_wsgi_one_thread_serves_them_in_turn_and_the_rest_wait_to_be_served(wsgi_sync_io_run):
    found = breakdowns(wsgi_sync_io_run)

    assert_they_add_up(found, wsgi_sync_io_run)
    for breakdown in found:
        parts = breakdown.parts
        assert not breakdown.loop_measured
        assert (
            parts["in_thread"] + parts["blocked_in_thread"] + parts["gil_wait"] + parts["core_wait"]
            == breakdown.duration_ns
        )
        assert parts["blocked_in_thread"] >= 0.9 * DELAY_NS
    served = sorted(wsgi_sync_io_run["requests"], key=lambda r: r["received_ns"])
    last = next(b for b in found if b.request == served[-1]["id"])
    first = next(b for b in found if b.request == served[0]["id"])
    # The last one taken waited (sent at once with the others) for at least the whole of
    # the first.
    assert last.waiting_to_be_served_ns is not None
    assert last.waiting_to_be_served_ns >= first.duration_ns


def test_an_older_trace_says_less_and_still_adds_up(async_io_run):
    older = without_loop_data(async_io_run)

    found = breakdowns(older)

    assert_they_add_up(found, older)
    for breakdown in found:
        parts = breakdown.parts
        assert not breakdown.loop_measured
        # It cannot tell awaiting I/O from waiting for the loop at the view's await.
        assert parts["awaiting_io"] == 0
        assert parts["awaiting"] >= 0.9 * DELAY_NS
        assert parts["thread_wait"] == 0  # no called_ns: the wait for a thread is unknown


def test_a_request_without_a_response_has_no_breakdown(async_io_run):
    unfinished = {
        **async_io_run,
        "requests": [{**async_io_run["requests"][0], "finished_ns": None, "duration_ns": None}],
    }

    assert breakdowns(unfinished) == []
