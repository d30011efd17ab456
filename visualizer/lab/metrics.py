"""The lab's figures, computed from the recorded trace of a run: latency, throughput,
threads used (its timeline is the player's time strip, visualizer/traces/time_strip.py)."""

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
