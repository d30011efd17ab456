"""Two recordings side by side: each request's phases (received, type check, first pause,
resumed, response), aligned, with where each recording's time went
(tracer/breakdown.py) and the differences said in words. Pure functions over the two
documents; every figure is read from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracer import events as kinds
from tracer.breakdown import PART_LABELS, PARTS, Breakdown, Part, breakdowns
from tracer.events import Event, ScenarioInfo, TraceDocument
from visualizer.traces.narration import ms

PHASES = ("received", "type check", "view started", "first pause", "resumed", "response")


@dataclass(frozen=True)
class RequestPhases:
    request: str
    at_ms: dict[str, float | None]  # phase -> ms since the request was received


@dataclass(frozen=True)
class Side:
    document: TraceDocument
    title: str
    shown: list[RequestPhases]  # its first request and its slowest
    totals: dict[Part, int]  # ns in each part, all requests together
    slowest_ns: int | None
    breakdowns: list[Breakdown]

    @property
    def phase_rows(self) -> list[tuple[str, list[float | None]]]:
        """One row a phase: when it began for each request shown."""
        return [(phase, [shown.at_ms[phase] for shown in self.shown]) for phase in PHASES]

    @property
    def part_rows(self) -> list[tuple[str, str]]:
        """Each part that took any time, in words, with its time."""
        return [(PART_LABELS[part], ms(ns)) for part, ns in self.totals.items() if ns]


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    differences: list[str]


def phases_of(request: str, received_ns: int, events: Sequence[Event]) -> RequestPhases:
    """When each phase began for one request (None: the trace has no such step for it)."""
    at: dict[str, int | None] = dict.fromkeys(PHASES)
    at["received"] = received_ns
    for event in events:
        if event["request"] != request:
            continue
        kind, t = event["kind"], event["t_ns"]
        if kind == kinds.VIEW_TYPE_CHECKED and at["type check"] is None:
            at["type check"] = t
        elif kind == kinds.VIEW_STARTED and at["view started"] is None:
            at["view started"] = t
        elif kind == kinds.AWAIT_SUSPENDED and at["first pause"] is None:
            at["first pause"] = t
        elif kind in (kinds.AWAIT_RESUMED, kinds.AWAIT_RAISED) and at["resumed"] is None:
            at["resumed"] = t
        elif event["kind"] == kinds.CALL_BLOCKING and at["first pause"] is None:
            # A blocking call: recorded when it ended, after duration_ns.
            at["first pause"], at["resumed"] = t - event["duration_ns"], t
        elif kind == kinds.RESPONSE_FINISHED:
            at["response"] = t
    return RequestPhases(
        request,
        {phase: None if t is None else (t - received_ns) / 1e6 for phase, t in at.items()},
    )


def side_of(document: TraceDocument) -> Side:
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
    )


def compare(a: TraceDocument, b: TraceDocument) -> Comparison:
    left, right = side_of(a), side_of(b)
    return Comparison(left, right, differences(left, right))


def _most(side: Side, part: Part) -> tuple[str, int] | None:
    """The request that spent the most time in ``part``, and how long."""
    best = max(side.breakdowns, key=lambda b: b.parts.get(part, 0), default=None)
    if best is None:
        return None
    return best.request, best.parts.get(part, 0)


def differences(a: Side, b: Side) -> list[str]:
    """The parts where the two differ most, in words: the request of each that spent the
    longest in that part. Parts under a millisecond on both sides are not worth a line."""
    said: list[str] = []
    if a.slowest_ns is not None and b.slowest_ns is not None:
        said.append(
            f"The slowest request took {ms(a.slowest_ns)} in A and {ms(b.slowest_ns)} in B."
        )
    gaps = sorted(PARTS, key=lambda p: abs(a.totals[p] - b.totals[p]), reverse=True)
    for part in gaps[:3]:
        most_a, most_b = _most(a, part), _most(b, part)
        if most_a is None or most_b is None or max(most_a[1], most_b[1]) < 1_000_000:
            continue
        said.append(
            f"{PART_LABELS[part].capitalize()}: {most_a[0]} {ms(most_a[1])} in A, "
            f"{most_b[0]} {ms(most_b[1])} in B (the longest of each)."
        )
    return said
