"""The lab's figures, computed from the recorded trace of a run: latency, throughput,
threads used, and the lanes of its timeline."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from visualizer.traces.narration import code_stalls
from visualizer.traces.threads import ThreadSummary, peak, thread_summary


def _sent(request: Mapping[str, Any]) -> int:
    """When the request left the client, or (no client timing) reached the server."""
    return int(request.get("client_sent_ns") or request["received_ns"])


def _done(request: Mapping[str, Any]) -> int:
    return int(request.get("client_done_ns") or request["finished_ns"])


@dataclass(frozen=True)
class Metrics:
    requests: int
    wall_ms: float
    throughput: float  # requests per second
    p50_ms: float
    p95_ms: float
    max_ms: float
    peak_concurrency: int
    # OS threads the requests used: the threads their views started on and those their
    # code hopped to (Django's request_started receivers, response.close(), the ORM...).
    threads_used: int
    loop_blocked_ms: float
    tracer_ms: float | None  # the tracer's own time, summed over requests (None: unknown)
    tracer_share: float | None  # ... as a share of the requests' time in the server
    # The threads views started on (what threads_used counted before hops were traced).
    view_threads: int = 0
    # The server process's most OS threads during the run (None: not sampled).
    peak_os_threads: int | None = None
    thread_use: ThreadSummary | None = None

    @property
    def tracer_percent(self) -> float | None:
        return self.tracer_share * 100 if self.tracer_share is not None else None


def lab_metrics(document: Mapping[str, Any]) -> Metrics:
    """The run's figures, from its trace: each request as its client saw it, from sending
    to the whole answer (including any wait before the server took it); where the trace
    has no client timings, from arrival at the server to the last byte."""
    requests = [r for r in document["requests"] if r["finished_ns"] is not None]
    if not requests:
        return Metrics(0, 0, 0, 0, 0, 0, 0, 0, 0, None, None)
    start = min(_sent(r) for r in requests)
    end = max(_done(r) for r in requests)
    durations = sorted((_done(r) - _sent(r)) / 1e6 for r in requests)
    wall_ms = (end - start) / 1e6
    events = document["events"]
    tracer_ns = [r["tracer_ns"] for r in requests if "tracer_ns" in r]
    in_server_ns = sum(r["duration_ns"] for r in requests)
    view_threads = {e["thread"] for e in events if e["kind"] == "view.started"}
    threads = thread_summary(events, requests, document.get("thread_samples"))
    held = {thread.thread for request in threads.requests for thread in request.threads}
    return Metrics(
        requests=len(requests),
        wall_ms=wall_ms,
        throughput=len(requests) / (wall_ms / 1000) if wall_ms else 0,
        p50_ms=statistics.median(durations),
        p95_ms=_percentile(durations, 95),
        max_ms=durations[-1],
        peak_concurrency=peak(requests),
        threads_used=len(view_threads | held),
        # A busy machine's delays of the loop are not the code's (narration.code_stalls).
        loop_blocked_ms=sum(e["duration_ns"] for e in code_stalls(events)) / 1e6,
        tracer_ms=sum(tracer_ns) / 1e6 if tracer_ns else None,
        tracer_share=sum(tracer_ns) / in_server_ns if tracer_ns and in_server_ns else None,
        view_threads=len(view_threads),
        peak_os_threads=threads.peak_os_threads,
        thread_use=threads,
    )


def _percentile(ordered: list[float], percent: int) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Segment:
    phase: str  # waiting, loop, suspended, thread, blocked, response
    label: str
    left: float  # percent of the timeline
    width: float


@dataclass(frozen=True)
class Lane:
    label: str
    segments: list[Segment]
    kind: str = "request"  # "request", "loop" or "thread"


PHASE_LABELS = {
    "waiting": "waiting to be served",
    "loop": "running on the event loop",
    "suspended": "suspended on an await",
    "thread": "running in a worker thread",
    "blocked": "blocked",
    "stall": "event loop stalled",
    "pending": "sent, no answer yet",
}


def timeline(document: Mapping[str, Any], now_ns: int | None = None) -> tuple[list[Lane], float]:
    """One lane per request, then the event loop and each worker thread, with the phases
    the events show; positions in percent of the run's length (also returned, in ms).
    For a run still going on, ``now_ns`` is where the unfinished phases end."""
    requests = [r for r in document["requests"] if r["finished_ns"] is not None or now_ns]
    if not requests:
        return [], 0.0

    def end_of(request: dict[str, Any]) -> int:
        finished = request.get("client_done_ns") or request["finished_ns"]
        return int(finished) if finished else now_ns or 0

    origin = min(_sent(r) for r in requests)
    span = max(max(end_of(r) for r in requests) - origin, 1)

    def segment(phase: str, start: int, end: int) -> Segment:
        left = (start - origin) / span * 100
        width = max((end - start) / span * 100, 0.15)
        return Segment(phase, f"{PHASE_LABELS[phase]}: {(end - start) / 1e6:.1f} ms", left, width)

    by_request: dict[str, list[dict[str, Any]]] = {}
    for event in document["events"]:
        by_request.setdefault(event["request"] or "", []).append(event)
    lanes = []
    thread_spans: dict[str, list[Segment]] = {}
    for request in requests:
        segments: list[Segment] = []
        blocked: list[Segment] = []  # drawn last, on top of the phase they interrupt
        events = by_request.get(request["id"], [])
        started = next((e for e in events if e["kind"] == "view.started"), None)
        returned = next((e for e in events if e["kind"] == "view.returned"), None)
        view_end = returned["t_ns"] if returned else now_ns
        if request.get("not_seen_by_server"):
            # Sent, and not (yet) in this process's trace.
            phase = "pending" if document.get("interface") == "wsgi" else "waiting"
            segments.append(segment(phase, _sent(request), end_of(request)))
        elif started and view_end:
            segments.append(segment("waiting", _sent(request), started["t_ns"]))
            on_loop = started["task"] is not None
            running_from = started["t_ns"]
            suspended_at = None
            for event in events:
                if event["kind"] == "await.suspended":
                    suspended_at = event["t_ns"]
                if event["kind"] == "await.resumed":
                    pause_start = event["t_ns"] - event["duration_ns"]
                    segments.append(segment("loop", running_from, pause_start))
                    segments.append(segment("suspended", pause_start, event["t_ns"]))
                    running_from = event["t_ns"]
                    suspended_at = None
                if event["kind"] == "call.blocking":
                    call_start = event["t_ns"] - event["duration_ns"]
                    blocked.append(segment("blocked", call_start, event["t_ns"]))
            phase = "loop" if on_loop else "thread"
            if returned is None and suspended_at is not None:
                segments.append(segment(phase, running_from, suspended_at))
                segments.append(segment("suspended", suspended_at, view_end))
            else:
                segments.append(segment(phase, running_from, view_end))
            segments.extend(blocked)
            if not on_loop:
                thread_spans.setdefault(started["thread"], []).append(
                    segment("thread", started["t_ns"], view_end)
                )
        elif now_ns and request["finished_ns"] is None:
            segments.append(segment("waiting", _sent(request), now_ns))
        lanes.append(Lane(f"{request['id']} {request['method']} {request['url']}", segments))
    stalls = [
        segment("stall", e["started_ns"], e["started_ns"] + e["duration_ns"])
        for e in document["events"]
        if e["kind"] == "loop.blocked"
    ]
    lanes.append(Lane("event loop", stalls, "loop"))
    for thread, spans in sorted(thread_spans.items()):
        lanes.append(Lane(f"thread {thread}", spans, "thread"))
    return lanes, span / 1e6
