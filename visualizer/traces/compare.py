"""Two recordings side by side: each request's phases (received, type check, first pause,
resumed, response), aligned, with where each recording's time went
(tracer/breakdown.py) and the differences said in words. Pure functions over the two
documents; every figure is read from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tracer import events as kinds
from tracer.breakdown import PART_LABELS, PARTS, Breakdown, Part, breakdowns
from tracer.events import Event, ScenarioInfo, TraceDocument
from visualizer.traces.narration import QUEUE_WAIT_NS, ms
from visualizer.traces.time_went import TimeWent, is_asgi, time_went, wsgi_words

PHASES = ("received", "type check", "view started", "first pause", "resumed", "response")
# A plain def view (and a view that computes) has no await: its first wait is a blocking call.
PHASE_LABELS = {
    **{phase: phase for phase in PHASES},
    "first pause": "first pause (an await) or blocking call",
    "resumed": "resumed (or the call returned)",
}


@dataclass(frozen=True)
class RequestPhases:
    request: str
    at_ms: dict[str, float | None]  # phase -> ms since the request was received
    paused_in: str | None = None  # what its first pause was, in words


@dataclass(frozen=True)
class Side:
    document: TraceDocument
    title: str
    shown: list[RequestPhases]  # its first request and its slowest
    totals: dict[Part, int]  # ns in each part, all requests together
    slowest_ns: int | None
    breakdowns: list[Breakdown]
    time_went: TimeWent  # the bars and the verdict, as the player shows them

    @property
    def asgi(self) -> bool:
        return is_asgi(self.document)

    @property
    def part_rows(self) -> list[tuple[str, str]]:
        """Each part that took any time, in words, with its time."""
        return [(PART_LABELS[part], ms(ns)) for part, ns in self.totals.items() if ns]


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    differences: list[str]

    @property
    def columns(self) -> list[tuple[str, str, bool]]:
        """The phase table's columns: (side, request, whether it is that side's slowest)."""
        return [
            (label, shown.request, index > 0)
            for label, side in (("A", self.a), ("B", self.b))
            for index, shown in enumerate(side.shown)
        ]

    @property
    def phase_rows(self) -> list[tuple[str, list[tuple[float | None, str | None]]]]:
        """One row a phase, so that both sides line up: when it began for each request
        shown (A's, then B's), in ms since that request arrived, and for the first pause
        what it was."""
        shown = [*self.a.shown, *self.b.shown]
        return [
            (
                PHASE_LABELS[phase],
                [
                    (request.at_ms[phase], request.paused_in if phase == "first pause" else None)
                    for request in shown
                ],
            )
            for phase in PHASES
        ]


def phases_of(request: str, received_ns: int, events: Sequence[Event]) -> RequestPhases:
    """When each phase began for one request (None: the trace has no such step for it)."""
    at: dict[str, int | None] = dict.fromkeys(PHASES)
    at["received"] = received_ns
    paused_in = None
    for event in events:
        if event["request"] != request:
            continue
        kind, t = event["kind"], event["t_ns"]
        if kind == kinds.VIEW_TYPE_CHECKED and at["type check"] is None:
            at["type check"] = t
        elif kind == kinds.VIEW_STARTED and at["view started"] is None:
            at["view started"] = t
        elif kind == kinds.AWAIT_SUSPENDED and at["first pause"] is None:
            at["first pause"], paused_in = t, "paused at an await"
        elif kind in (kinds.AWAIT_RESUMED, kinds.AWAIT_RAISED) and at["resumed"] is None:
            at["resumed"] = t
        elif event["kind"] == kinds.CALL_BLOCKING and at["first pause"] is None:
            # A blocking call: recorded when it ended, after duration_ns.
            at["first pause"], at["resumed"] = t - event["duration_ns"], t
            cause = f" ({event['cause']})" if event.get("cause") else ""
            held = "the event loop" if event["on_event_loop"] else "its thread"
            paused_in = f"blocked in {event['callable']}(){cause}, holding {held}"
        elif kind == kinds.RESPONSE_FINISHED:
            at["response"] = t
    return RequestPhases(
        request,
        {phase: None if t is None else (t - received_ns) / 1e6 for phase, t in at.items()},
        paused_in,
    )


def side_of(document: TraceDocument, axis_ns: int = 0) -> Side:
    """One recording's side; its bars drawn on an axis of ``axis_ns`` if longer."""
    requests = document["requests"]
    finished = [r for r in requests if r.get("duration_ns") is not None]
    chosen = [requests[0]] if requests else []
    if finished:
        slowest = max(finished, key=lambda r: r["duration_ns"] or 0)
        if slowest["id"] != chosen[0]["id"]:
            chosen.append(slowest)
    found = breakdowns(document)
    totals: dict[Part, int] = dict.fromkeys(PARTS, 0)
    for breakdown in found:
        for part, value in breakdown.parts.items():
            totals[part] += value
    scenario: ScenarioInfo | None = document.get("scenario")
    name = scenario["title"] if scenario else "Trace"
    interface = document["server"].get("interface") or "server unknown"
    title = f"{name} ({interface}), {document['id']}"
    return Side(
        document=document,
        title=title,
        shown=[phases_of(r["id"], r["received_ns"], document["events"]) for r in chosen],
        totals=totals,
        slowest_ns=max(r["duration_ns"] or 0 for r in finished) if finished else None,
        breakdowns=found,
        time_went=time_went(document, axis_ns=axis_ns),
    )


def compare(a: TraceDocument, b: TraceDocument) -> Comparison:
    # Both sides' bars on one time axis, the longest request's, so that their lengths compare.
    durations = [r.get("duration_ns") or 0 for r in (*a["requests"], *b["requests"])]
    axis_ns = max(durations, default=0)
    left, right = side_of(a, axis_ns), side_of(b, axis_ns)
    return Comparison(left, right, differences(left, right))


# What a request did in a part, to be said as "r2 waited 1.2 s for the event loop".
_DID: dict[Part, str] = {
    "on_loop": "ran {t} on the event loop",
    "blocked_on_loop": "was blocked {t} in a call on the event loop, holding it",
    "loop_wait": "waited {t} for the event loop",
    "awaiting_io": "waited {t} at an await (I/O, a timer or another task)",
    "awaiting": "waited {t} at an await (for I/O or for the loop: the trace cannot tell)",
    "on_loop_or_waiting": "spent {t} in Django's code on the event loop or waiting for it",
    "thread_wait": "waited {t} for a worker thread to start its code",
    "in_thread": "ran {t} in a thread",
    "blocked_in_thread": "was blocked {t} in a thread (network, disk, a sleep or a lock)",
    "gil_wait": "waited {t} for the GIL",
    "core_wait": "waited {t} for a CPU core",
}
# When each phase came, said of a request: "r1 resumed 311 ms after it arrived".
_REACHED = {
    "type check": "had its view's type checked",
    "view started": "started its view",
    "first pause": "reached its first pause or blocking call",
    "resumed": "resumed",
    "response": "finished its response",
}
# Differences under this are not worth a line.
_NOTABLE_NS = 1_000_000
_PARTS_SAID = 3


def differences(a: Side, b: Side) -> list[str]:
    """What differs, in words, each figure read from the two breakdowns: the slowest
    request, how long all of them took, how the first requests first stopped and the phase
    they reached furthest apart, the wait to be served, and the parts where the two differ
    most; a wait or a part said of the request that spent longest there and of the same
    request on the other side."""
    said: list[str] = []
    if a.slowest_ns is not None and b.slowest_ns is not None:
        said.append(
            f"The slowest request took {ms(a.slowest_ns)} in A and {ms(b.slowest_ns)} in B."
        )
    span_a, span_b = _answered_within(a), _answered_within(b)
    if span_a is not None and span_b is not None:
        said.append(
            f"All {span_a[0]} of A's requests were answered within {ms(span_a[1])} of the "
            f"first arriving; all {span_b[0]} of B's within {ms(span_b[1])}."
        )
    for line in (_pause_difference(a, b), _phase_difference(a, b), _queue_difference(a, b)):
        if line:
            said.append(line)

    def gap(part: Part) -> int:
        return abs(a.totals[part] - b.totals[part])

    widest = sorted((part for part in PARTS if gap(part) >= _NOTABLE_NS), key=gap, reverse=True)
    for part in widest[:_PARTS_SAID]:
        line = _part_difference(a, b, part)
        if line:
            said.append(line)
    return said


def _answered_within(side: Side) -> tuple[int, int] | None:
    """How many requests the side has and how long from the first arriving to the last
    answered, when it has more than one and all of them were answered."""
    requests = side.document["requests"]
    if len(requests) < 2 or any(r.get("finished_ns") is None for r in requests):
        return None
    first = min(r["received_ns"] for r in requests)
    last = max(r["finished_ns"] or 0 for r in requests)
    return len(requests), last - first


def _pause_difference(a: Side, b: Side) -> str | None:
    """How the first requests first stopped, when that differs: paused at an await,
    blocked in a call holding the event loop or its thread, or neither."""
    if not a.shown or not b.shown or a.shown[0].paused_in == b.shown[0].paused_in:
        return None
    first_a, first_b = (
        f"{first.request} first {first.paused_in}"
        if first.paused_in
        else f"{first.request} never paused or blocked"
        for first in (a.shown[0], b.shown[0])
    )
    return f"In A, {first_a}; in B, {first_b}."


def _phase_difference(a: Side, b: Side) -> str | None:
    """The phase the two first requests reached furthest apart (since each arrived)."""
    if not a.shown or not b.shown:
        return None
    first_a, first_b = a.shown[0], b.shown[0]

    def gap(phase: str) -> float:
        at_a, at_b = first_a.at_ms[phase], first_b.at_ms[phase]
        if at_a is None and at_b is None:
            return -1.0
        if at_a is None or at_b is None:
            return float("inf")
        return abs(at_a - at_b)

    phase = max(_REACHED, key=gap)
    if gap(phase) * 1_000_000 < _NOTABLE_NS:
        return None
    at_a, at_b = first_a.at_ms[phase], first_b.at_ms[phase]
    reached = _REACHED[phase]
    who = first_a.request if first_a.request == first_b.request else "The first request"
    if at_a is None or at_b is None:
        where, at, never = ("A", at_a, "B") if at_b is None else ("B", at_b, "A")
        return (
            f"{who} {reached} {ms((at or 0) * 1e6)} after it arrived in {where}; "
            f"in {never} it never did."
        )
    return f"{who} {reached} {ms(at_a * 1e6)} after it arrived in A, {ms(at_b * 1e6)} in B."


def _part_difference(a: Side, b: Side, part: Part) -> str | None:
    """One part of the requests' time in the server, where the two differ."""
    did = _DID[part]
    if not (a.asgi or b.asgi):
        did = wsgi_words(did, asgi=False)
    return _said_of_longest(a, b, lambda found: found.parts[part], did)


def _queue_difference(a: Side, b: Side) -> str | None:
    """The wait before the server took a request (outside its time in the server: a WSGI
    server's requests queue for its threads), when one side's requests queued and the two
    differ there."""

    def waited(found: Breakdown) -> int:
        return found.waiting_to_be_served_ns or 0

    totals = [sum(map(waited, side.breakdowns)) for side in (a, b)]
    longest = max(map(waited, [*a.breakdowns, *b.breakdowns]), default=0)
    if longest <= QUEUE_WAIT_NS or abs(totals[0] - totals[1]) < _NOTABLE_NS:
        return None
    return _said_of_longest(a, b, waited, "waited {t} before the server took it")


def _said_of_longest(a: Side, b: Side, value: Callable[[Breakdown], int], did: str) -> str | None:
    """A figure of each request, said of the request with the most on the side with the
    most in all, and of the request of the same name on the other side (and of that side's
    own longest, when it is another request with more)."""
    (lead, lead_name), (other, other_name) = sorted(
        ((a, "A"), (b, "B")), key=lambda side: sum(map(value, side[0].breakdowns)), reverse=True
    )
    longest = max(lead.breakdowns, key=value, default=None)
    if longest is None or value(longest) < _NOTABLE_NS:
        return None
    same = next((found for found in other.breakdowns if found.request == longest.request), None)
    there = f"{ms(value(same))} in {other_name}" if same else ""
    most = max(other.breakdowns, key=value, default=None)
    if most is not None and (same is None or value(most) - value(same) >= _NOTABLE_NS):
        longest_there = f"its longest there, {most.request}, {ms(value(most))}"
        there = f"{there} ({longest_there})" if there else f"in {other_name} {longest_there}"
    elif not there:
        there = f"no request in {other_name}"
    return f"{longest.request} {did.format(t=ms(value(longest)))} in {lead_name}, {there}."
