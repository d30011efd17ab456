"""The time strip: a recording's time axis with one lane per request, the event loop and each
thread, drawn from the trace's events (templates/includes/time_strip.html). The player draws
it under the picture, with the current step's instant marked and a link per position to the
step at that time; the lab draws its timelines with it, side by side on one axis.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracer import events as kinds
from visualizer.traces.narration import ms, plural

PHASE_LABELS = {
    "waiting": "waiting to be served",
    "loop": "running on the event loop",
    "task": "running a request's task",
    "suspended": "suspended on an await",
    "thread": "running in a worker thread",
    "blocked": "blocked",
    "stall": "event loop stalled",
    "pending": "sent, no answer yet",
}
# Positions (links to the step at that time) across the strip.
POSITIONS = 48
# The strip draws this many requests' lanes, then says how many more there are.
LANES_SHOWN = 20


def _sent(request: Mapping[str, Any]) -> int:
    """When the request left the client, or (no client timing) reached the server."""
    return int(request.get("client_sent_ns") or request["received_ns"])


@dataclass(frozen=True)
class Span:
    phase: str  # a key of PHASE_LABELS
    start_ns: int
    end_ns: int

    @property
    def label(self) -> str:
        return f"{PHASE_LABELS[self.phase]}: {ms(self.end_ns - self.start_ns)}"


@dataclass(frozen=True)
class Lane:
    label: str
    spans: list[Span]
    kind: str = "request"  # "request", "loop" or "thread"


@dataclass(frozen=True)
class Lanes:
    """A recording's lanes in the trace's own clock: from when its first request was sent
    (``origin_ns``) to when its last answer was in (or ``now_ns``, for a run going on), or
    to the end of the last thing drawn, if later."""

    origin_ns: int
    end_ns: int
    lanes: list[Lane]

    @property
    def length_ns(self) -> int:
        return max(self.end_ns - self.origin_ns, 1)


def lanes_of(document: Mapping[str, Any], now_ns: int | None = None) -> Lanes | None:
    """One lane per request, then the event loop and each thread a request's code ran in,
    with the phases the events show. For a run still going on, ``now_ns`` is where the
    unfinished phases end (without it, only finished requests are drawn). None: nothing
    to draw."""
    requests = [r for r in document["requests"] if r["finished_ns"] is not None or now_ns]
    if not requests:
        return None

    def end_of(request: Mapping[str, Any]) -> int:
        finished = request.get("client_done_ns") or request["finished_ns"]
        return int(finished) if finished else now_ns or 0

    by_request: dict[str, list[Mapping[str, Any]]] = {}
    for event in document["events"]:
        by_request.setdefault(event["request"] or "", []).append(event)
    wsgi = (document.get("server") or {}).get("interface") == "wsgi"
    lanes = [
        Lane(
            f"{request['id']} {request['method']} {request['url']}",
            _request_spans(
                request, by_request.get(request["id"], []), end_of(request), now_ns, wsgi=wsgi
            ),
        )
        for request in requests
    ]
    if not wsgi:  # a WSGI server has no event loop serving the requests
        lanes.append(Lane("event loop", _loop_spans(document), "loop"))
    for thread, spans in _thread_spans(document["events"]).items():
        lanes.append(Lane(f"thread {thread}", spans, "thread"))
    origin = min(_sent(r) for r in requests)
    # To the last answer in, or past it to what the server still did (closing a response).
    end = max(
        max(end_of(r) for r in requests),
        max((span.end_ns for lane in lanes for span in lane.spans), default=0),
    )
    return Lanes(origin, end, lanes)


def _request_spans(
    request: Mapping[str, Any],
    events: list[Mapping[str, Any]],
    end: int,
    now_ns: int | None,
    *,
    wsgi: bool,
) -> list[Span]:
    spans: list[Span] = []
    blocked: list[Span] = []  # drawn last, on top of the phase they interrupt
    started = next((e for e in events if e["kind"] == kinds.VIEW_STARTED), None)
    returned = next((e for e in events if e["kind"] == kinds.VIEW_RETURNED), None)
    view_end = returned["t_ns"] if returned else now_ns
    if request.get("not_seen_by_server"):
        # Sent, and not (yet) in this process's trace.
        return [Span("pending" if wsgi else "waiting", _sent(request), end)]
    if started is None or not view_end:
        return [Span("waiting", _sent(request), now_ns)] if now_ns else []
    spans.append(Span("waiting", _sent(request), started["t_ns"]))
    on_loop = started["task"] is not None
    running_from = started["t_ns"]
    suspended_at = None
    for event in events:
        if event["kind"] == kinds.AWAIT_SUSPENDED:
            suspended_at = event["t_ns"]
        if event["kind"] == kinds.AWAIT_RESUMED:
            pause_start = event["t_ns"] - event["duration_ns"]
            spans.append(Span("loop", running_from, pause_start))
            spans.append(Span("suspended", pause_start, event["t_ns"]))
            running_from = event["t_ns"]
            suspended_at = None
        if event["kind"] == kinds.CALL_BLOCKING:
            blocked.append(Span("blocked", event["t_ns"] - event["duration_ns"], event["t_ns"]))
    phase = "loop" if on_loop else "thread"
    if returned is None and suspended_at is not None:
        spans.append(Span(phase, running_from, suspended_at))
        spans.append(Span("suspended", suspended_at, view_end))
    else:
        spans.append(Span(phase, running_from, view_end))
    return spans + blocked


def _loop_spans(document: Mapping[str, Any]) -> list[Span]:
    """The loop running the requests' tasks (their measured steps on it, when the trace has
    them) and its stalls."""
    spans = [
        Span("task", started, ended)
        for request in document["requests"]
        if isinstance(steps := request.get("loop_steps"), list)
        for _, started, ended in steps
    ]
    spans += [
        Span("stall", e["started_ns"], e["started_ns"] + e["duration_ns"])
        for e in document["events"]
        if e["kind"] == kinds.LOOP_BLOCKED
    ]
    return spans


def _thread_spans(events: list[Mapping[str, Any]]) -> dict[str, list[Span]]:
    """Each thread that ran a request's code for it (each hop), with the slow calls that
    blocked it; in order of the threads' first use."""
    found: dict[str, list[Span]] = {}
    for event in events:
        if event["kind"] == kinds.THREAD_HOP:
            start = event["started_ns"]
            found.setdefault(event["to_thread"], []).append(
                Span("thread", start, start + event["duration_ns"])
            )
    if not found:  # a trace without hops (tracer version 1): each sync view's thread
        started = {
            e["request"]: e for e in events if e["kind"] == kinds.VIEW_STARTED and e["task"] is None
        }
        for event in events:
            view = started.get(event["request"]) if event["kind"] == kinds.VIEW_RETURNED else None
            if view is not None:
                found.setdefault(view["thread"], []).append(
                    Span("thread", view["t_ns"], event["t_ns"])
                )
    for event in events:
        blocking = event["kind"] == kinds.CALL_BLOCKING and not event["on_event_loop"]
        if blocking and event["thread"] in found:
            found[event["thread"]].append(
                Span("blocked", event["t_ns"] - event["duration_ns"], event["t_ns"])
            )
    return found


# -- drawn on an axis ---------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    phase: str
    label: str
    left: float  # percent of the axis
    width: float
    duration_ns: int


@dataclass(frozen=True)
class DrawnLane:
    label: str
    segments: list[Segment]
    kind: str

    @property
    def sentence(self) -> str:
        """The lane in words: each phase once, with how often and how long in all."""
        phases: dict[str, list[int]] = {}
        for segment in self.segments:
            phases.setdefault(segment.phase, []).append(segment.duration_ns)
        told = ", ".join(
            f"{PHASE_LABELS[phase]} {ms(durations[0])}"
            if len(durations) == 1
            else f"{PHASE_LABELS[phase]} {len(durations)} times, {ms(sum(durations))} in all"
            for phase, durations in phases.items()
        )
        return f"{self.label}: {told or 'nothing recorded'}."


@dataclass(frozen=True)
class Tick:
    left: float
    label: str


@dataclass(frozen=True)
class Position:
    """A stretch of the axis and the step at its middle: what a click there opens."""

    left: float
    width: float
    step: int
    at: str  # the middle's time since the run began


@dataclass(frozen=True)
class TimeStrip:
    lanes: list[DrawnLane]
    length: str  # the recording's length
    ticks: list[Tick]
    positions: list[Position] = field(default_factory=list)
    marker: float | None = None  # the current step's instant, percent of the axis
    marker_at: str = ""
    current_position: int | None = None  # index in positions of the marker (or the first)
    hidden: int = 0  # requests not drawn

    @property
    def legend(self) -> list[tuple[str, str]]:
        """The phases drawn, in the order of PHASE_LABELS, with their words."""
        drawn = {segment.phase for lane in self.lanes for segment in lane.segments}
        return [(phase, label) for phase, label in PHASE_LABELS.items() if phase in drawn]

    @property
    def sentences(self) -> list[str]:
        """The strip in words, for screen readers."""
        said = [f"The recording lasts {self.length}, counted from when its first request was sent."]
        if self.marker is not None:
            said.append(f"This step is at {self.marker_at} since the run began.")
        said += [lane.sentence for lane in self.lanes]
        if self.hidden:
            said.append(f"{plural(self.hidden, 'more request')} not drawn.")
        return said


def step_times(events: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Each step's (t_ns, seq), in order of time: what "the step at a time" reads."""
    return sorted((e["t_ns"], e["seq"]) for e in events)


def step_at(times: list[tuple[int, int]], t_ns: int) -> int:
    """The step at ``t_ns``: the latest one to happen at or before it (the first if none)."""
    index = bisect.bisect_right(times, (t_ns, math.inf)) - 1
    return times[max(index, 0)][1]


def time_strip(
    lanes: Lanes,
    *,
    axis_ns: int | None = None,
    times: list[tuple[int, int]] | None = None,
    at_ns: int | None = None,
    max_requests: int | None = LANES_SHOWN,
) -> TimeStrip:
    """``lanes`` drawn on an axis of ``axis_ns`` (at least their length: side by side
    strips share the longer one's), with a link per position to the step at that time if
    ``times`` (step_times) is given, and the step at ``at_ns`` marked. Only the first
    ``max_requests`` requests' lanes are drawn (all with None)."""
    axis = max(axis_ns or 0, lanes.length_ns)
    origin = lanes.origin_ns

    def percent(t_ns: int) -> float:
        return min(max((t_ns - origin) / axis * 100, 0.0), 100.0)

    def drawn(lane: Lane) -> DrawnLane:
        segments = [
            Segment(
                span.phase,
                span.label,
                percent(span.start_ns),
                max(percent(span.end_ns) - percent(span.start_ns), 0.15),
                span.end_ns - span.start_ns,
            )
            for span in lane.spans
        ]
        return DrawnLane(lane.label, segments, lane.kind)

    requests = [lane for lane in lanes.lanes if lane.kind == "request"]
    hidden = 0
    if max_requests is not None and len(requests) > max_requests:
        hidden = len(requests) - max_requests
    shown = requests[: len(requests) - hidden] + [
        lane for lane in lanes.lanes if lane.kind != "request"
    ]
    strip = TimeStrip(
        lanes=[drawn(lane) for lane in shown],
        length=ms(lanes.length_ns),
        ticks=ticks(axis),
        hidden=hidden,
    )
    if not times:
        return strip
    width = 100 / POSITIONS
    positions = [
        Position(
            index * width,
            width,
            step_at(times, origin + int((index + 0.5) * axis / POSITIONS)),
            ms((index + 0.5) * axis / POSITIONS),
        )
        for index in range(POSITIONS)
    ]
    marker, current = None, 0
    if at_ns is not None:
        marker = percent(at_ns)
        current = min(int(marker / width), POSITIONS - 1)
    return TimeStrip(
        lanes=strip.lanes,
        length=strip.length,
        ticks=strip.ticks,
        positions=positions,
        marker=marker,
        marker_at=ms(max(0, at_ns - origin)) if at_ns is not None else "",
        current_position=current,
        hidden=hidden,
    )


def ticks(axis_ns: int, most: int = 6) -> list[Tick]:
    """Round times along an axis of ``axis_ns``: 0, then every 1, 2 or 5 times 10^k ms, at
    most ``most`` + 1 of them."""
    axis_ms = axis_ns / 1e6
    raw = axis_ms / most
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    found = []
    index = 0
    while (value := round(index * step, 9)) <= axis_ms:
        found.append(Tick(value / axis_ms * 100 if axis_ms else 0.0, _tick_label(value)))
        index += 1
    return found


def _tick_label(value_ms: float) -> str:
    if value_ms >= 1000:
        return f"{round(value_ms / 1000, 6):g} s"
    return f"{round(value_ms, 6):g} ms"
