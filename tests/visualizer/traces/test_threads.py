"""The OS threads each request held, worked out from its trace (visualizer/traces/threads.py), and
how the pages show them."""

from __future__ import annotations

import json
from typing import Any

from django.template.loader import render_to_string

from tests.fixtures import VERSION_1_EXAMPLES
from tracer.validation import validate_trace
from visualizer.lab.metrics import lab_metrics
from visualizer.traces.threads import LISTED_REQUESTS, thread_summary, thread_use, threads_held

EXAMPLES = VERSION_1_EXAMPLES
MS = 1_000_000
seq = 0


def event(kind: str, request: str, thread: str, t_ms: float, **fields: Any) -> dict[str, Any]:
    global seq
    seq += 1
    return {
        "seq": seq,
        "t_ns": int(t_ms * MS),
        "kind": kind,
        "request": request,
        "task": None,
        "thread": thread,
        "file": None,
        "function": None,
        "line": None,
        "locals": {},
        **fields,
    }


def hop(
    request: str,
    purpose: str,
    to_thread: str,
    start_ms: float,
    length_ms: float,
    *,
    cpu_ms: float = 0.1,
    new: bool = False,
    adapter: str = "sync_to_async",
    from_thread: str = "MainThread",
) -> dict[str, Any]:
    return event(
        "thread.hop",
        request,
        to_thread,
        start_ms + length_ms,
        adapter=adapter,
        purpose=purpose,
        target=f"some.{purpose}",
        from_thread=from_thread,
        to_thread=to_thread,
        started_ns=int(start_ms * MS),
        duration_ns=int(length_ms * MS),
        cpu_ns=int(cpu_ms * MS),
        thread_new=new,
    )


def checked(request: str, thread: str, t_ms: float, handler: str = "async") -> dict[str, Any]:
    return event(
        "view.type_checked",
        request,
        thread,
        t_ms,
        view="v",
        is_async=True,
        handler=handler,
        runs_on="event_loop",
        adapter=None,
    )


def received(request: str, thread: str, t_ms: float) -> dict[str, Any]:
    return event("request.received", request, thread, t_ms, method="GET", path="/", query="")


def document(
    events: list[dict[str, Any]],
    requests: dict[str, tuple[float, float]],
    interface: str = "asgi",
    samples: list[list[int]] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "django-async-visualizer.trace",
        "version": 2,
        "id": "threads",
        "recorded_at": "2026-01-01T00:00:00+00:00",
        "clock": "monotonic_ns",
        "scenario": None,
        "server": {"interface": interface},
        "tracer": {},
        "requests": [
            {
                "id": rid,
                "method": "GET",
                "url": "/",
                "view": "v",
                "status": 200,
                "bytes": 1,
                "received_ns": int(a * MS),
                "finished_ns": int(b * MS),
                "duration_ns": int((b - a) * MS),
            }
            for rid, (a, b) in requests.items()
        ],
        # Numbered from 1 in the order given (the helpers number as they go).
        "events": [
            {**e, "seq": n} for n, e in enumerate(sorted(events, key=lambda e: e["seq"]), 1)
        ],
    }
    if samples is not None:
        doc["thread_samples"] = samples
    return doc


def async_io_request(request: str, thread: str, new: bool = True) -> list[dict[str, Any]]:
    """An async view under ASGI: request_started and response.close() in the request's
    thread, the view on the loop for 300 ms in between."""
    return [
        received(request, "MainThread", 0),
        hop(request, "request_started", thread, 0.5, 0.5, cpu_ms=0.2, new=new),
        checked(request, "MainThread", 1.5),
        event(
            "await.resumed",
            request,
            "MainThread",
            301,
            awaiting="fetch()",
            duration_ns=299 * MS,
            off_loop_ns=299 * MS,
            suspensions=1,
        ),
        hop(request, "response_close", thread, 302, 1, cpu_ms=0.3),
    ]


def test_it_finds_an_async_views_thread_mostly_parked():
    (use,) = thread_use(
        document(async_io_request("r1", "ThreadPoolExecutor-3_0"), {"r1": (0, 302)})
    )

    (thread,) = use.threads
    assert thread.thread == "ThreadPoolExecutor-3_0"
    assert thread.new is True and thread.request_thread is False
    assert thread.purposes == ("request_started", "response_close")
    assert thread.held_ns == int(302.5 * MS)  # from its first hop to the end of close()
    assert thread.computing_ns == int(0.5 * MS)
    assert thread.blocked_ns == 0
    assert thread.busy_ns == 1 * MS
    assert thread.parked_ns == thread.held_ns - int(1.5 * MS)


def test_it_finds_a_sync_views_thread_mostly_blocked():
    thread = "ThreadPoolExecutor-4_0"
    events = [
        received("r1", "MainThread", 0),
        hop("r1", "request_started", thread, 0.5, 0.5, new=True),
        checked("r1", "MainThread", 1.5),
        event(
            "call.blocking",
            "r1",
            thread,
            302,
            callable="fetch_data_blocking",
            duration_ns=298 * MS,
            cpu_ns=1 * MS,
            waiting=True,
            on_event_loop=False,
        ),
        hop("r1", "view", thread, 2, 300, cpu_ms=2),
        hop("r1", "response_close", thread, 303, 1),
    ]
    (use,) = thread_use(document(events, {"r1": (0, 303)}))

    (used,) = use.threads
    assert used.blocked_ns == 298 * MS
    assert used.computing_ns == int(2.2 * MS)
    assert used.parked_ns == 2 * MS  # between the hops
    assert used.blocked_ns > used.parked_ns + used.busy_ns + used.computing_ns


def test_a_slow_call_waiting_for_the_gil_is_not_blocked():
    thread = "ThreadPoolExecutor-4_0"
    events = [
        received("r1", "MainThread", 0),
        hop("r1", "view", thread, 1, 100, cpu_ms=10),
        event(
            "call.blocking",
            "r1",
            thread,
            100,
            callable="work",
            duration_ns=90 * MS,
            cpu_ns=10 * MS,
            waiting=True,
            on_event_loop=False,
            cause="gil",
        ),
    ]
    (use,) = thread_use(document(events, {"r1": (0, 101)}))

    assert use.threads[0].blocked_ns == 0
    assert use.threads[0].busy_ns == 90 * MS


def test_under_wsgi_the_request_thread_waits_parked_for_the_private_loop():
    events = [
        received("r1", "MainThread", 0),
        checked("r1", "MainThread", 1, handler="sync"),
        event(
            "await.resumed",
            "r1",
            "ThreadPoolExecutor-1_0",
            300,
            awaiting="fetch()",
            duration_ns=290 * MS,
            off_loop_ns=290 * MS,
            suspensions=1,
        ),
        hop(
            "r1",
            "view",
            "ThreadPoolExecutor-1_0",
            5,
            300,
            cpu_ms=5,
            new=True,
            adapter="async_to_sync",
        ),
    ]
    (use,) = thread_use(document(events, {"r1": (0, 310)}, interface="wsgi"))

    request_thread, loop_thread = use.threads
    assert request_thread.thread == "MainThread" and request_thread.request_thread
    assert request_thread.new is None  # the trace cannot tell
    assert request_thread.held_ns == 310 * MS
    assert request_thread.parked_ns == 300 * MS  # waiting for the view's loop
    assert loop_thread.new is True
    # The private loop had nothing else to run while the view awaited.
    assert loop_thread.blocked_ns == 290 * MS
    assert loop_thread.computing_ns == 5 * MS


def test_the_summary_counts_threads_once_and_takes_the_peak_of_the_samples():
    events = async_io_request("r1", "T-1") + async_io_request("r2", "T-2", new=False)
    doc = document(events, {"r1": (0, 302), "r2": (0, 302)}, samples=[[0, 3], [5, 5], [9, 4]])
    summary = thread_summary(doc["events"], doc["requests"], doc["thread_samples"])

    assert summary.threads == 2 and summary.new == 1
    assert summary.peak_os_threads == 5
    assert summary.on_event_loop and summary.recorded
    assert threads_held(doc) == {"T-1", "T-2"}
    validate_trace(doc)


def test_the_lab_counts_the_threads_requests_held_and_the_peak():
    events = async_io_request("r1", "T-1") + async_io_request("r2", "T-2")
    for e in events:
        if e["kind"] == "view.type_checked":
            events.append(event("view.started", e["request"], "MainThread", 1.6))
    metrics = lab_metrics(
        document(events, {"r1": (0, 302), "r2": (0, 302)}, samples=[[0, 3], [1, 5]])
    )

    # The loop the views started on, and the two threads the requests held.
    assert metrics.threads_used == 3
    assert metrics.view_threads == 1
    assert metrics.peak_os_threads == 5


def test_a_trace_recorded_before_hops_were_traced_says_so():
    document_v1 = json.loads((EXAMPLES / "async-io-4-requests.json").read_bytes())
    summary = thread_summary(document_v1["events"], document_v1["requests"])

    assert not summary.recorded
    html = render_to_string("includes/thread_use.html", {"thread_use": summary})
    assert "does not record the threads" in html


def test_the_partial_shows_each_thread_and_escapes_trace_text():
    events = async_io_request("r1", "<script>alert(1)</script>")
    doc = document(events, {"r1": (0, 302)}, samples=[[0, 4]])
    summary = thread_summary(doc["events"], doc["requests"], doc["thread_samples"])
    html = render_to_string("includes/thread_use.html", {"thread_use": summary})

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (new; request_started, response_close)" in html
    assert "parked 301.0 ms" in html
    assert "at most 4 OS threads" in html
    assert 'id="thread-use"' in html
    two = render_to_string(
        "includes/thread_use.html", {"thread_use": summary, "thread_use_suffix": 2}
    )
    assert 'id="thread-use-2"' in two and "<h3" in two


def test_a_long_trace_lists_some_requests_and_counts_them_all():
    events = [e for i in range(LISTED_REQUESTS + 7) for e in async_io_request(f"r{i}", f"T{i}")]
    doc = document(events, {f"r{i}": (0, 302) for i in range(LISTED_REQUESTS + 7)})
    summary = thread_summary(doc["events"], doc["requests"])
    html = render_to_string("includes/thread_use.html", {"thread_use": summary})

    assert html.count("<li><strong>") == LISTED_REQUESTS
    assert "and 7 more requests, not listed here" in html
    assert f"{LISTED_REQUESTS + 7} requests held {LISTED_REQUESTS + 7} OS threads" in html
