"""Where each request's time went, from a trace document: running on the event loop, awaiting
I/O, ready but waiting for the loop, waiting for or running in a worker thread, waiting for
the GIL (docs/trace-format.md, "Where the time went").

Computed on read, never stored: the parts of a request cover its ``duration_ns`` exactly,
each instant counted once. A trace without a newer tracer's measurements says less: without
its task's steps on the loop (``loop_steps``) an await is "awaiting" (I/O, or ready and
waiting for the loop: it cannot tell) and Django's own code "on the loop or waiting for it".
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from tracer import events as kinds
from tracer import loop_clock

Part = Literal[
    "on_loop",
    "blocked_on_loop",
    "loop_wait",
    "awaiting_io",
    "awaiting",
    "on_loop_or_waiting",
    "thread_wait",
    "in_thread",
    "blocked_in_thread",
    "gil_wait",
    "core_wait",
]
# In the order of a stacked bar.
PARTS: tuple[Part, ...] = get_args(Part)
PART_LABELS: dict[Part, str] = {
    "on_loop": "running on the event loop",
    "blocked_on_loop": "blocked in a call on the event loop, holding it",
    "loop_wait": "ready, waiting for the event loop",
    "awaiting_io": "at an await, waiting for I/O, a timer or another task",
    "awaiting": "at an await: waiting for I/O, or ready and waiting for the loop (this trace "
    "cannot tell)",
    "on_loop_or_waiting": "in Django's code on the event loop, or waiting for it (this trace "
    "cannot tell)",
    "thread_wait": "waiting for a worker thread to start its code",
    "in_thread": "running in a thread",
    "blocked_in_thread": "blocked in a thread: waiting for the network, a disk, a sleep or a lock",
    "gil_wait": "waiting for the GIL while another thread computed",
    "core_wait": "ready to run, waiting for a CPU core (the machine was busy)",
}


@dataclass(frozen=True)
class Breakdown:
    """One request's time. ``parts`` (every Part, in PARTS order) add up to ``duration_ns``,
    from the server handing the request to Django to the last byte of its answer.
    ``waiting_to_be_served_ns`` (from the client sending it to the server handing it over:
    a queue, the connection being set up) and ``answer_delivery_ns`` (from the last byte to
    the client having it) are outside it, and None without the client's times."""

    request: str
    duration_ns: int
    parts: dict[Part, int]
    waiting_to_be_served_ns: int | None
    answer_delivery_ns: int | None
    # True when the trace has the request's task's steps on the event loop, so that
    # awaiting I/O and waiting for the loop are told apart.
    loop_measured: bool
    # CPU time of the threads that ran its code for it (its hops), of their time in_thread
    # and the parts in threads: the rest of that time they were not computing.
    thread_cpu_ns: int


def breakdowns(document: Mapping[str, Any]) -> list[Breakdown]:
    """The breakdown of every request of ``document`` that finished, in its order."""
    by_request: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in document["events"]:
        if event["request"] is not None:
            by_request[event["request"]].append(event)
    asgi = (document.get("server") or {}).get("interface", "asgi") == "asgi"
    found = []
    for request in document["requests"]:
        result = request_breakdown(request, by_request.get(request["id"], []), asgi=asgi)
        if result is not None:
            found.append(result)
    return found


def request_breakdown(
    request: Mapping[str, Any], events: Iterable[Mapping[str, Any]], *, asgi: bool
) -> Breakdown | None:
    """One request's breakdown from its summary and its events; None if it did not finish."""
    received, finished = request.get("received_ns"), request.get("finished_ns")
    if type(received) is not int or type(finished) is not int or finished < received:
        return None
    mine = list(events)
    arrival = next((e for e in mine if e["kind"] == kinds.REQUEST_RECEIVED), None)
    home = arrival["thread"] if arrival is not None else None
    steps = request.get("loop_steps") if asgi else None
    measured = isinstance(steps, list) and "loop_ns" in request
    timeline = _Timeline(
        received,
        finished,
        "in_thread" if not asgi else "awaiting_io" if measured else "on_loop_or_waiting",
    )
    blocking = [e for e in mine if e["kind"] == kinds.CALL_BLOCKING]
    awaits = [e for e in mine if e["kind"] in (kinds.AWAIT_RESUMED, kinds.AWAIT_RAISED)]
    hops = [e for e in mine if e["kind"] == kinds.THREAD_HOP and e["from_thread"] == home]
    # Hops from the request's own thread: the wait for a thread, the thread running its
    # code, and (under ASGI) the answer waiting for the loop.
    for hop in sorted(hops, key=lambda e: e["started_ns"]):
        ran_until = hop["started_ns"] + hop["duration_ns"]
        if isinstance(hop.get("called_ns"), int):
            timeline.paint(hop["called_ns"], hop["started_ns"], "thread_wait")
        timeline.paint(hop["started_ns"], ran_until, "in_thread")
        if asgi:
            timeline.paint(ran_until, hop["t_ns"], "loop_wait")
        for call in blocking:
            if not call["on_event_loop"] and call["thread"] == hop["to_thread"]:
                start = max(call["t_ns"] - call["duration_ns"], hop["started_ns"])
                timeline.paint(start, min(call["t_ns"], ran_until), _thread_part(call))
    if not asgi:
        for call in blocking:
            if call["thread"] == home:
                timeline.paint(call["t_ns"] - call["duration_ns"], call["t_ns"], _thread_part(call))
    on_loop_in_awaits = 0
    if not measured:
        # Where in an await the task ran on the loop (the awaited code) is not known, only
        # for how long: that time is moved to on_loop below. Under WSGI the awaits run on
        # the view's own loop, in the thread of its hop.
        kept = _THREAD_PARTS | _LOOP_WAIT if asgi else _BLOCKED_PARTS
        for ended in awaits:
            start = ended["t_ns"] - ended["duration_ns"]
            on_loop_in_awaits += max(0, ended["duration_ns"] - ended["off_loop_ns"])
            timeline.paint_unless(start, ended["t_ns"], "awaiting", kept)
    if asgi and not measured:
        for stall in mine:
            if stall["kind"] == kinds.LOOP_BLOCKED:
                timeline.paint(stall["started_ns"], stall["t_ns"], "on_loop")
    if measured:
        assert isinstance(steps, list)
        for ready, started, ended in steps:
            timeline.paint(ready, started, "loop_wait")
            timeline.paint(started, ended, "on_loop")
        if len(steps) >= loop_clock.MAX_STEPS:
            # The list stops there: after its last step, say less.
            timeline.paint(steps[-1][2], finished, "on_loop_or_waiting")
    if asgi:
        for call in blocking:
            if call["on_event_loop"]:
                start = call["t_ns"] - call["duration_ns"]
                timeline.paint(start, call["t_ns"], _loop_part(call))
    if asgi:
        for stall in mine:
            if stall["kind"] == kinds.LOOP_BLOCKED:
                _held_not_computing(timeline, stall)
    parts = timeline.totals()
    if on_loop_in_awaits:
        moved = min(on_loop_in_awaits, parts["awaiting"])
        parts["awaiting"] -= moved
        parts["on_loop"] += moved
    sent, done = request.get("client_sent_ns"), request.get("client_done_ns")
    return Breakdown(
        request=request["id"],
        duration_ns=finished - received,
        parts=parts,
        waiting_to_be_served_ns=received - sent if type(sent) is int and sent <= received else None,
        answer_delivery_ns=done - finished if type(done) is int and done >= finished else None,
        loop_measured=measured,
        thread_cpu_ns=sum(hop["cpu_ns"] for hop in hops if hop["started_ns"] < finished),
    )


_BLOCKED_PARTS: frozenset[Part] = frozenset(
    {"thread_wait", "blocked_in_thread", "gil_wait", "core_wait"}
)
_THREAD_PARTS: frozenset[Part] = _BLOCKED_PARTS | {"in_thread"}
_LOOP_WAIT: frozenset[Part] = frozenset({"loop_wait"})


def _thread_part(call: Mapping[str, Any]) -> Part:
    cause = call.get("cause")
    if cause is None:  # version 1: only the CPU share
        return "blocked_in_thread" if call["waiting"] else "in_thread"
    return {
        kinds.CAUSE_WAITING: "blocked_in_thread",
        kinds.CAUSE_GIL: "gil_wait",
        kinds.CAUSE_PREEMPTED: "core_wait",
    }.get(cause, "in_thread")  # type: ignore[return-value]


def _loop_part(call: Mapping[str, Any]) -> Part:
    cause = call.get("cause")
    if cause is None:
        return "blocked_on_loop" if call["waiting"] else "on_loop"
    return {
        kinds.CAUSE_WAITING: "blocked_on_loop",
        kinds.CAUSE_GIL: "gil_wait",
        kinds.CAUSE_PREEMPTED: "core_wait",
    }.get(cause, "on_loop")  # type: ignore[return-value]


def _held_not_computing(timeline: _Timeline, stall: Mapping[str, Any]) -> None:
    """A stall of the request's own step that was mostly not computing (waiting, the GIL,
    a core): its time without CPU was not running. Where in the stall is not known, only
    for how long: that much of its on_loop time changes part."""
    part = {
        kinds.CAUSE_WAITING: "blocked_on_loop",
        kinds.CAUSE_GIL: "gil_wait",
        kinds.CAUSE_PREEMPTED: "core_wait",
    }.get(stall.get("cause") or "")
    cpu = stall.get("cpu_ns")
    if part is None or type(cpu) is not int:
        return
    start, end = stall["started_ns"], stall["t_ns"]
    segments = list(timeline.segments(start, end))
    told = sum(e - s for s, e, p in segments if p in ("blocked_on_loop", "gil_wait", "core_wait"))
    left = max(0, end - start - cpu - told)
    for seg_start, seg_end, seg_part in segments:
        if left <= 0:
            break
        if seg_part == "on_loop":
            taken = min(left, seg_end - seg_start)
            timeline.paint(seg_start, seg_start + taken, part)  # type: ignore[arg-type]
            left -= taken


class _Timeline:
    """``[start, end)`` split into consecutive segments, each of one Part; painting a span
    gives it a part, over whatever it had."""

    def __init__(self, start: int, end: int, part: Part) -> None:
        self.start, self.end = start, end
        self.starts = [start]
        self.parts: list[Part] = [part]

    def paint(self, start: int, end: int, part: Part) -> None:
        start, end = max(start, self.start), min(end, self.end)
        if start >= end:
            return
        starts, parts = self.starts, self.parts
        first = bisect.bisect_right(starts, start) - 1
        last = bisect.bisect_right(starts, end) - 1
        after = parts[last]
        new_starts, new_parts = [start], [part]
        if end < self.end:
            new_starts.append(end)
            new_parts.append(after)
        keep = first + 1 if starts[first] < start else first
        starts[keep : last + 1] = new_starts
        parts[keep : last + 1] = new_parts

    def paint_unless(self, start: int, end: int, part: Part, kept: frozenset[Part]) -> None:
        """Paint the span, except where it already has one of the ``kept`` parts."""
        for seg_start, seg_end, seg_part in list(self.segments(start, end)):
            if seg_part not in kept:
                self.paint(seg_start, seg_end, part)

    def segments(self, start: int, end: int) -> Iterable[tuple[int, int, Part]]:
        bounds = [*self.starts, self.end]
        for index, part in enumerate(self.parts):
            seg_start, seg_end = max(bounds[index], start), min(bounds[index + 1], end)
            if seg_start < seg_end:
                yield seg_start, seg_end, part

    def totals(self) -> dict[Part, int]:
        totals = dict.fromkeys(PARTS, 0)
        for start, end, part in self.segments(self.start, self.end):
            totals[part] += end - start
        return totals
