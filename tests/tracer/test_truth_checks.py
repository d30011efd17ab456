"""The lesson's claims, measured on real servers with 20 concurrent requests of 300 ms I/O."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.conftest import of_kind, record
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.server_process import GunicornServer

CONCURRENT, DELAY_MS = 20, 300


@pytest.fixture(scope="module")
def wsgi_1x1(gunicorn_1x1: GunicornServer) -> GunicornServer:
    return gunicorn_1x1


def timed(server, slug: str, requests: int, **params: int) -> tuple[dict, float]:
    started = time.monotonic()
    trace = record(server, slug, requests=requests, **params)
    return trace, time.monotonic() - started


def spans(trace: dict, first: str, last: str) -> list[tuple[int, int]]:
    return [
        (of_kind(trace, first, r["id"])[0]["t_ns"], of_kind(trace, last, r["id"])[0]["t_ns"])
        for r in trace["requests"]
    ]


def one_at_a_time(trace: dict) -> bool:
    """No two requests' views ran at the same time."""
    ordered = sorted(spans(trace, "view.started", "view.returned"))
    return all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(ordered))


def test_async_io_under_asgi_waits_for_20_requests_at_once(traced_server):
    trace, _ = timed(traced_server, "async-io", CONCURRENT, delay_ms=DELAY_MS)

    assert len(trace["requests"]) == CONCURRENT
    # Every request was waiting at its await before the first answer came back: the waits
    # overlapped, however slow the machine (a wall-clock bound would fail on a busy one).
    waits = spans(trace, "await.suspended", "await.resumed")
    assert max(start for start, _ in waits) < min(end for _, end in waits)


def test_sync_io_under_wsgi_1x1_serves_20_requests_one_at_a_time(wsgi_1x1):
    trace, twenty = timed(wsgi_1x1, "sync-io", CONCURRENT, delay_ms=DELAY_MS)

    assert trace["server"]["interface"] == "wsgi"
    assert trace["server"]["software"].startswith("gunicorn")
    # At least the sum of the waits (a lone request, timed on a busy machine, is too noisy
    # a yardstick).
    assert twenty >= 0.9 * CONCURRENT * DELAY_MS / 1000
    assert one_at_a_time(trace)
    assert {of_kind(trace, "view.type_checked")[0]["runs_on"]} == {"request_thread"}


def test_sync_io_under_asgi_runs_on_parallel_worker_threads(traced_server):
    trace, _ = timed(traced_server, "sync-io", CONCURRENT, delay_ms=DELAY_MS)

    threads = {e["to_thread"] for e in of_kind(trace, "thread.handoff")}
    assert len(threads) == CONCURRENT
    # All twenty views were running at once (the trace says so; no wall-clock bound).
    starts_ends = spans(trace, "view.started", "view.returned")
    assert max(s for s, _ in starts_ends) < min(e for _, e in starts_ends)


def test_async_cpu_under_asgi_runs_one_at_a_time_and_stalls_the_loop(traced_server):
    # About 50 ms of computing each: well above the 20 ms stall threshold.
    trace, _ = timed(traced_server, "async-cpu", CONCURRENT, work=40_000)

    assert one_at_a_time(trace)
    # The computations (count_primes, called by the view) held the loop. On a busy
    # machine other stalls happen too (even Daphne's access log can be caught), a stall can
    # be the loop's thread waiting for a core ("preempted", no code named), and two
    # requests' computations can fall in one stall, so not every request has its own.
    stalls = of_kind(trace, "loop.blocked")
    culprits = {"count_primes", "async_cpu"}
    assert len([e for e in stalls if e["held_by"] in culprits]) >= CONCURRENT // 2


def test_async_file_read_blocks_the_event_loop_and_its_text_follows_each_read(traced_server):
    """The scenario's text says the read holds the loop's thread, waiting for the disk or
    copying from memory as the trace says: every read is on the loop and held it, and the
    words of each read's step say what its trace measured. (The page cache is dropped
    before each read, so most wait for the disk; a read can still compute for most of its
    time, so how many waited is not a fact of the scenario.)"""
    from visualizer.traces.narration import cells, context_of_document

    scenario = SCENARIOS["async-file"]
    assert "waiting for the disk or copying from memory" in " ".join(scenario.keep)
    trace = record(traced_server, "async-file", requests=3)

    reads = [e for e in of_kind(trace, "call.blocking") if e["callable"] == "read_file"]
    assert len(reads) == 3
    assert all(read["on_event_loop"] is True for read in reads)
    context = context_of_document(trace)
    said = {"waiting": "waiting", "computing": "computing", "gil": "GIL", "preempted": "CPU core"}
    for read in reads:
        action = cells(read, context)[0]
        assert said[read["cause"]] in action, (read["cause"], action)
    assert "await.suspended" not in [e["kind"] for e in trace["events"]]
    # The loop ran nothing else meanwhile: a stall held by the read.
    assert "read_file" in {e["held_by"] for e in of_kind(trace, "loop.blocked")}
    assert all(r["bytes"] == len('{"bytes": 67108864}') for r in trace["requests"])
    # One read at a time: the loop ran nothing else meanwhile.
    assert one_at_a_time(trace)
