"""Django's own thread hops, traced on real servers: request_started, the view, the ORM,
response.close(), and the OS threads they hold when many requests run at once."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync, sync_to_async

from tests.conftest import of_kind, record
from tracer import hops as hops_module
from tracer.instrumentation import Instrumentation
from tracer.recorder import RecordingStore, current_request
from tracer.validation import validate_trace
from visualizer.server_process import DaphneServer, GunicornServer
from visualizer.traces.threads import thread_use

CONCURRENT, DELAY_MS = 50, 500


@pytest.fixture(scope="module")
def wsgi_1x1(server_data_dir: str) -> Iterator[GunicornServer]:
    env = {"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir}
    with GunicornServer(env, workers=1, threads=1) as server:
        yield server


def hops(trace: dict[str, Any], purpose: str | None = None) -> list[dict[str, Any]]:
    return [h for h in of_kind(trace, "thread.hop") if purpose is None or h["purpose"] == purpose]


def test_it_records_the_request_started_and_response_close_hops_of_an_async_view(
    traced_server,
):
    trace = record(traced_server, "async-io", delay_ms=50)

    started, closed = hops(trace, "request_started"), hops(trace, "response_close")
    assert len(started) == len(closed) == 1
    started_hop, close_hop = started[0], closed[0]
    loop_thread = of_kind(trace, "request.received")[0]["thread"]
    assert started_hop["from_thread"] == close_hop["from_thread"] == loop_thread
    # One thread of the request's own, made for it, kept until response.close().
    assert started_hop["to_thread"] != loop_thread
    assert started_hop["thread_new"] is True
    assert close_hop["to_thread"] == started_hop["to_thread"]
    assert close_hop["thread_new"] is False
    assert started_hop["adapter"] == close_hop["adapter"] == "sync_to_async"
    assert started_hop["target"].endswith("Signal.asend.<locals>.sync_send")
    assert close_hop["target"] == "django.http.response.HttpResponseBase.close"
    # The view itself ran on the loop, with no hop of its own, and no middleware hopped.
    assert of_kind(trace, "view.started")[0]["thread"] == loop_thread
    assert [h["purpose"] for h in hops(trace)] == ["request_started", "response_close"]
    # Recorded right after request.received, with its real time (before the view check).
    kinds = [e["kind"] for e in trace["events"]]
    assert kinds.index("thread.hop") == kinds.index("request.received") + 1
    checked = of_kind(trace, "view.type_checked")[0]
    assert started_hop["started_ns"] + started_hop["duration_ns"] <= checked["t_ns"]
    finished = of_kind(trace, "response.finished")[0]
    assert close_hop["started_ns"] >= finished["t_ns"]
    assert trace["thread_samples"] and trace["server"]["gil_enabled"] in (True, False)
    validate_trace(trace)


def test_it_records_the_hop_of_a_sync_view(traced_server):
    trace = record(traced_server, "sync-io", delay_ms=50)

    (view_hop,) = hops(trace, "view")
    # Django's own hops and the view's; none from middleware.
    assert [h["purpose"] for h in hops(trace)] == ["request_started", "view", "response_close"]
    assert view_hop["adapter"] == "sync_to_async"
    assert view_hop["target"] == "visualizer.scenarios.scenario_views.sync_io"
    assert view_hop["to_thread"] == of_kind(trace, "view.started")[0]["thread"]
    assert view_hop["to_thread"] == hops(trace, "request_started")[0]["to_thread"]
    assert view_hop["duration_ns"] >= 50_000_000
    # Waiting for the upstream service takes little CPU.
    assert view_hop["cpu_ns"] < view_hop["duration_ns"]
    # The existing handoff event stays.
    assert of_kind(trace, "thread.handoff")[0]["to_thread"] == view_hop["to_thread"]
    validate_trace(trace)


def test_it_records_the_database_hops_of_the_async_orm(traced_server):
    trace = record(traced_server, "async-orm")

    database = hops(trace, "database")
    assert [h["target"] for h in database] == [
        "django.db.models.query.QuerySet.count",
        "django.db.models.query.QuerySet.first",
    ]
    request_thread = hops(trace, "request_started")[0]["to_thread"]
    assert {h["to_thread"] for h in database} == {request_thread}
    validate_trace(trace)


def test_it_records_asyncio_to_thread_from_a_view(traced_server):
    trace = record(traced_server, "async-offload", work=20_000)

    (offload,) = [h for h in hops(trace) if h["adapter"] == "to_thread"]
    assert offload["target"] == "visualizer.scenarios.scenario_views.count_primes"
    assert offload["purpose"] == "other"
    assert offload["to_thread"] != offload["from_thread"]
    validate_trace(trace)


def test_an_async_view_under_wsgi_hops_to_a_private_loop_thread(wsgi_1x1):
    trace = record(wsgi_1x1, "async-io", delay_ms=50)

    request_thread = of_kind(trace, "request.received")[0]["thread"]
    (view_hop,) = hops(trace, "view")
    assert view_hop["adapter"] == "async_to_sync"
    assert view_hop["target"] == "visualizer.scenarios.scenario_views.async_io"
    assert view_hop["from_thread"] == request_thread
    assert view_hop["to_thread"] != request_thread
    assert of_kind(trace, "view.started")[0]["thread"] == view_hop["to_thread"]
    assert trace["server"]["workers"] == trace["server"]["threads"] == 1
    # Under WSGI, request_started is sent in the request's own thread: no hop.
    assert hops(trace, "request_started") == []
    validate_trace(trace)


def record_while_counting(server: DaphneServer, slug: str) -> tuple[dict[str, Any], int]:
    """Record CONCURRENT requests; return the trace and the most OS threads the process
    that ran the views had, as this test saw them in /proc while the run went on. (The
    views run in the server's subject process: one request first tells its pid.)"""
    pid = record(server, slug, requests=1, delay_ms=0)["server"]["pid"]
    tasks = f"/proc/{pid}/task"
    seen = [len(os.listdir(tasks))]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.append(len(os.listdir(tasks)))
            done.wait(0.002)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        trace = record(server, slug, requests=CONCURRENT, delay_ms=DELAY_MS)
    finally:
        done.set()
        poller.join()
    assert trace["server"]["pid"] == pid
    return trace, max(seen)


@pytest.mark.parametrize("slug", ["async-io", "sync-io"])
def test_the_traced_thread_count_agrees_with_proc(traced_server, slug):
    trace, polled_peak = record_while_counting(traced_server, slug)

    traced_peak = max(count for _, count in trace["thread_samples"])
    assert traced_peak >= CONCURRENT and polled_peak >= CONCURRENT
    assert abs(traced_peak - polled_peak) <= 0.1 * polled_peak
    # Every request held a thread of its own, async views too.
    uses = thread_use(trace)
    assert len(uses) == CONCURRENT
    assert all(len(use.threads) == 1 for use in uses)
    assert len({use.threads[0].thread for use in uses}) == CONCURRENT
    # async-io: each thread was held, idle (parked), for at least the whole await: its
    # hops (request_started, response.close) come before and after it. sync-io: each
    # thread was blocked in the upstream call for at least its delay. On a busy machine
    # the threads also wait longer for their turn on the loop, parked, so this is asked
    # of each request's own wait, not of which part is the largest.
    delay_ns = DELAY_MS * 1_000_000
    for use in uses:
        (thread,) = use.threads
        if slug == "async-io":
            assert thread.blocked_ns == 0, (use.request, thread)
            assert thread.parked_ns >= delay_ns, (use.request, thread)
        else:
            assert thread.blocked_ns >= delay_ns, (use.request, thread)
    validate_trace(trace)


# -- the patches themselves, without a server -------------------------------------------


def test_the_patches_are_applied_by_enable_and_removed_by_disable():
    originals = (
        SyncToAsync.__call__,
        SyncToAsync.thread_handler,
        AsyncToSync.__call__,
        AsyncToSync.main_wrap,
        asyncio.to_thread,
    )
    instrumentation = Instrumentation()
    instrumentation.enable()
    try:
        instrumentation.enable()
        assert SyncToAsync.__call__ is not originals[0]
        assert asyncio.to_thread is not originals[4]
        # The patched to_thread reads the same as asyncio's in a trace.
        assert asyncio.to_thread.__qualname__ == "to_thread"
        assert asyncio.to_thread.__module__ == "asyncio.threads"
    finally:
        instrumentation.disable()
        instrumentation.disable()
    assert (
        SyncToAsync.__call__,
        SyncToAsync.thread_handler,
        AsyncToSync.__call__,
        AsyncToSync.main_wrap,
        asyncio.to_thread,
    ) == originals


def test_a_failing_recorder_does_not_change_what_the_adapters_return(monkeypatch):
    instrumentation = Instrumentation()
    recording = RecordingStore().get_or_create("hops")
    trace = recording.new_request("GET", "/", 0)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("recorder broke")

    monkeypatch.setattr(hops_module, "sample_threads", broken)
    monkeypatch.setattr(trace, "emit", broken)

    async def traced() -> int:
        current_request.set(trace)
        total = await sync_to_async(lambda: 20)()
        total += await asyncio.to_thread(lambda: 20)
        return total + await sync_to_async(lambda: async_to_sync(asyncio.sleep)(0, 2))()

    instrumentation.enable()
    try:
        assert asyncio.run(traced()) == 42
    finally:
        instrumentation.disable()
    assert instrumentation.errors > 0


def test_an_untraced_call_records_nothing():
    instrumentation = Instrumentation()
    recording = RecordingStore().get_or_create("untraced")
    instrumentation.enable()
    try:
        assert asyncio.run(sync_to_async(lambda: 7)()) == 7
    finally:
        instrumentation.disable()
    assert recording.events == [] and instrumentation.errors == 0


def test_the_thread_count_follows_new_threads_between_readings_of_proc():
    counter = hops_module._ThreadCounter(refresh_ns=60 * 10**9)
    first = counter.count()
    if first is None:
        pytest.skip("no /proc on this system")
    release = threading.Event()
    threads = [threading.Thread(target=release.wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        # No new reading of /proc within the minute: Python's own count says it.
        assert counter.count() == first + 3
        assert hops_module._ThreadCounter().count() == first + 3  # as /proc says
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert counter.count() == first
