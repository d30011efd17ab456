"""The OS threads each request held, from its trace: pure functions over the document.

A request holds a thread from the first time its code hops to it (a ``thread.hop``) until
the request ends; under WSGI it also holds the thread it arrived on, from arrival to its
last byte. While held, a thread is computing (its CPU time during the hops), blocked (in a
slow call that waited, or running a private event loop while the view awaited), busy
otherwise, or parked: alive and kept for the request but doing nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from tracer import events as kinds
from tracer.events import CallBlocking, Event, RequestSummary, ThreadHop, TraceDocument

Interval = tuple[int, int]
# Parts of a thread's time shorter than this are left out of what is shown.
SHOWN_NS = 50_000

# Requests listed one by one on a page; the totals cover them all.
LISTED_REQUESTS = 50

# The events thread_use reads (a stored trace can load just these).
THREAD_KINDS = (
    kinds.REQUEST_RECEIVED,
    kinds.VIEW_TYPE_CHECKED,
    kinds.THREAD_HOP,
    kinds.CALL_BLOCKING,
    kinds.AWAIT_RESUMED,
    kinds.RESPONSE_FINISHED,
)


@dataclass(frozen=True)
class ThreadUse:
    """One OS thread as one request used it; times in nanoseconds."""

    thread: str
    # True: made for this request (first seen in a hop of it); None: the trace cannot tell.
    new: bool | None
    # True for the thread a WSGI request arrived on.
    request_thread: bool
    held_ns: int
    computing_ns: int
    blocked_ns: int
    busy_ns: int
    parked_ns: int
    purposes: tuple[str, ...]

    @property
    def active_ns(self) -> int:
        return self.computing_ns + self.blocked_ns + self.busy_ns

    def parts(self) -> list[tuple[str, float]]:
        """The parts of its held time worth showing, as (label, milliseconds)."""
        parts = (
            ("parked", self.parked_ns),
            ("computing", self.computing_ns),
            ("blocked", self.blocked_ns),
            ("busy otherwise", self.busy_ns),
        )
        return [(label, ns / 1e6) for label, ns in parts if ns >= SHOWN_NS]


@dataclass(frozen=True)
class RequestThreads:
    request: str
    threads: tuple[ThreadUse, ...]

    def total(self, part: str) -> int:
        return sum(getattr(thread, f"{part}_ns") for thread in self.threads)


def thread_use(document: TraceDocument) -> list[RequestThreads]:
    """Per request, in the document's order: the OS threads it held and how."""
    return thread_use_of(document["events"], document["requests"])


def thread_use_of(events: Iterable[Event], requests: list[RequestSummary]) -> list[RequestThreads]:
    by_request: dict[str, list[Event]] = {r["id"]: [] for r in requests}
    for event in events:
        request = event["request"]
        if event["kind"] in THREAD_KINDS and request in by_request:
            by_request[request].append(event)
    return [_request_threads(r, by_request[r["id"]]) for r in requests]


@dataclass(frozen=True)
class ThreadSummary:
    """The run's thread use: per request, and over all of them."""

    requests: tuple[RequestThreads, ...]
    threads: int  # distinct OS threads the requests held
    new: int  # ... of which were made for them
    peak_os_threads: int | None  # the server process's most OS threads, if sampled
    on_event_loop: bool  # the requests arrived on an event loop (not counted in threads)
    # False for a trace of an event loop with no thread.hop (recorded before hops were).
    recorded: bool

    def total(self, part: str) -> int:
        return sum(request.total(part) for request in self.requests)

    @property
    def listed(self) -> tuple[RequestThreads, ...]:
        """The requests listed one by one: a page of a long trace stays small."""
        return self.requests[:LISTED_REQUESTS]

    @property
    def unlisted(self) -> int:
        return max(0, len(self.requests) - LISTED_REQUESTS)

    @cached_property
    def totals(self) -> list[tuple[str, float]]:
        """(label, ms) of each part worth showing, over all the requests (worked out once:
        a page reads it several times, and a long trace has thousands of requests)."""
        labels = {"busy": "busy otherwise"}
        sums = {part: self.total(part) for part in ("parked", "computing", "blocked", "busy")}
        return [(labels.get(part, part), ns / 1e6) for part, ns in sums.items() if ns >= SHOWN_NS]


def thread_summary(
    events: Iterable[Event],
    requests: list[RequestSummary],
    thread_samples: list[list[int]] | None = None,
) -> ThreadSummary:
    events = [e for e in events if e["kind"] in THREAD_KINDS]
    uses = thread_use_of(events, requests)
    held = {t.thread: t for r in uses for t in r.threads}
    on_event_loop = any(
        e["kind"] == kinds.VIEW_TYPE_CHECKED and e["handler"] == "async" for e in events
    )
    return ThreadSummary(
        requests=tuple(uses),
        threads=len(held),
        new=len({t.thread for r in uses for t in r.threads if t.new}),
        peak_os_threads=_peak(thread_samples),
        on_event_loop=on_event_loop,
        recorded=not on_event_loop or any(e["kind"] == kinds.THREAD_HOP for e in events),
    )


def threads_held(document: TraceDocument) -> set[str]:
    """The OS threads the requests held (by name), besides the event loop."""
    return {t.thread for r in thread_use(document) for t in r.threads}


def peak_os_threads(document: TraceDocument) -> int | None:
    """The most OS threads the server process had while the run went on, if sampled."""
    return _peak(document.get("thread_samples"))


def _peak(samples: list[list[int]] | None) -> int | None:
    return max((count for _, count in samples or []), default=None)


def _request_threads(request: RequestSummary, events: list[Event]) -> RequestThreads:
    hops = [e for e in events if e["kind"] == kinds.THREAD_HOP]
    received = request["received_ns"]
    ends = [e["started_ns"] + e["duration_ns"] for e in hops]
    ends += [t for t in (request.get("finished_ns"),) if t is not None]
    end = max(ends, default=received)
    own_thread = _wsgi_request_thread(events)
    names = [n for n in dict.fromkeys([own_thread, *(e["to_thread"] for e in hops)]) if n]
    threads = []
    for name in names:
        to_it = [e for e in hops if e["to_thread"] == name]
        spans = [_span(e) for e in to_it]
        held_from = min((s for s, _ in spans), default=received)
        base = list(spans)
        if name == own_thread:
            held_from = received
            base.append((received, end))
        # Waiting for a private event loop in another thread: held, idle.
        waits = [
            _span(e)
            for e in hops
            if e["from_thread"] == name and e["adapter"] == kinds.ADAPTER_ASYNC_TO_SYNC
        ]
        active = _union([*_subtract(_union(base), waits), *spans])
        active_ns = _length(active)
        computing = min(active_ns, sum(e["cpu_ns"] for e in _outermost(to_it)))
        blocked = min(active_ns - computing, _blocked_ns(events, name, to_it))
        threads.append(
            ThreadUse(
                thread=name,
                new=any(e["thread_new"] for e in to_it) if to_it and name != own_thread else None,
                request_thread=name == own_thread,
                held_ns=end - held_from,
                computing_ns=computing,
                blocked_ns=blocked,
                busy_ns=active_ns - computing - blocked,
                parked_ns=max(0, end - held_from - active_ns),
                purposes=tuple(dict.fromkeys(e["purpose"] for e in to_it)),
            )
        )
    return RequestThreads(request["id"], tuple(threads))


def _wsgi_request_thread(events: list[Event]) -> str | None:
    """The thread a request arrived on, if it is not an event loop (Django's sync handler)."""
    checked = [e for e in events if e["kind"] == kinds.VIEW_TYPE_CHECKED]
    received = [e for e in events if e["kind"] == kinds.REQUEST_RECEIVED]
    if checked and received and checked[0]["handler"] == "sync":
        return str(received[0]["thread"])
    return None


def _blocked_ns(events: list[Event], thread: str, hops: list[ThreadHop]) -> int:
    waited = sum(
        e["duration_ns"]
        for e in events
        if e["kind"] == kinds.CALL_BLOCKING and e["thread"] == thread and _waited(e)
    )
    # A private event loop (async_to_sync) has nothing else to run while its view awaits.
    loops = [_span(e) for e in hops if e["adapter"] == kinds.ADAPTER_ASYNC_TO_SYNC]
    awaited = sum(
        e["off_loop_ns"]
        for e in events
        if e["kind"] == kinds.AWAIT_RESUMED
        and e["thread"] == thread
        and any(start <= e["t_ns"] <= end for start, end in loops)
    )
    return int(waited + awaited)


def _waited(event: CallBlocking) -> bool:
    cause = event.get("cause")
    return bool(cause == kinds.CAUSE_WAITING if cause is not None else event["waiting"])


def _span(hop: ThreadHop) -> Interval:
    return hop["started_ns"], hop["started_ns"] + hop["duration_ns"]


def _outermost(hops: list[ThreadHop]) -> list[ThreadHop]:
    """The hops not inside another hop to the same thread (so CPU is counted once)."""
    spans = [_span(h) for h in hops]
    return [
        hop
        for i, hop in enumerate(hops)
        if not any(
            j != i and s <= spans[i][0] and spans[i][1] <= e and (s, e) != spans[i]
            for j, (s, e) in enumerate(spans)
        )
    ]


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(intervals: list[Interval], holes: list[Interval]) -> list[Interval]:
    result = []
    for start, end in intervals:
        pieces = [(start, end)]
        for hole_start, hole_end in _union(holes):
            pieces = [
                piece
                for s, e in pieces
                for piece in ((s, min(e, hole_start)), (max(s, hole_end), e))
                if piece[0] < piece[1]
            ]
        result.extend(pieces)
    return result


def _length(intervals: list[Interval]) -> int:
    return sum(end - start for start, end in intervals)


# -- requests in the server at once ---------------------------------------------------


def peak(requests: Sequence[RequestSummary]) -> int:
    """The most requests in the server at one moment (arrival to last byte; those that
    never finished are not counted)."""
    spans = [(r["received_ns"], end) for r in requests if (end := r["finished_ns"]) is not None]
    return most_overlapping(spans)


def most_overlapping(spans: list[tuple[int, int]]) -> int:
    """The most spans (start, end) open at one moment."""
    changes = sorted(
        [(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
        key=lambda change: (change[0], change[1]),
    )
    most = current = 0
    for _, change in changes:
        current += change
        most = max(most, current)
    return most
