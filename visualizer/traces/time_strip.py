"""The time strip: a recording's time axis with one lane per request, the event loop and each
thread, drawn from the trace's events (templates/includes/time_strip.html). The player draws
it under the picture, with the current step's instant marked and a link per position to the
step at that time; the lab draws its timelines with it, side by side on one axis.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tracer import events as kinds
from visualizer.traces.narration import ms, plural

PHASE_LABELS = {
    "waiting": "waiting to be served",
    "loop": "running on the event loop",
    "task": "running a request's task",
    "suspended": "suspended on an await",
    # Not "worker thread": under WSGI it is the request's own thread of the server.
    "thread": "running in a thread",
    "blocked": "blocked",
    "stall": "event loop stalled",
    "pending": "sent, no answer yet",
}
# Positions (links to the step at that time) across the strip.
POSITIONS = 48
# The strip draws this many requests' lanes (and threads' lanes), then says how many more
# there are.
LANES_SHOWN = 20
# A lane with more spans than this is drawn in as many equal stretches of the axis, each
# in the phase that took most of its time (a long trace has tens of thousands of spans in
# a lane: more than a screen has pixels, and too much for every step's page).
MAX_SEGMENTS = 240


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

    @property
    def style(self) -> str:
        """Its place on the track, as the template's style attribute."""
        return f"left: {self.left:.3f}%; width: {self.width:.3f}%"


@dataclass(frozen=True)
class DrawnLane:
    label: str
    segments: list[Segment]
    kind: str
    # Each phase's (count, total ns) of the lane's spans, in order of first appearance:
    # what the lane's sentence tells (its segments may merge spans).
    phases: tuple[tuple[str, int, int], ...] = ()

    @functools.cached_property
    def html(self) -> SafeString:
        """The lane as templates/includes/time_strip.html draws it. Built here, once per
        drawn lane (a player keeps its strip's lanes for every step), rather than by the
        template at every step: a long trace's lanes have thousands of segments."""
        segments = format_html_join(
            "",
            '<span class="phase {}" style="{}" title="{}"></span>',
            ((segment.phase, segment.style, segment.label) for segment in self.segments),
        )
        return format_html(
            '<li class="lane lane-{}"><span class="lane-label" title="{}">{}</span>'
            '<span class="track">{}</span></li>',
            self.kind,
            self.label,
            self.label,
            segments,
        )

    @property
    def sentence(self) -> str:
        """The lane in words: each phase once, with how often and how long in all."""
        told = ", ".join(
            f"{PHASE_LABELS[phase]} {ms(total)}"
            if count == 1
            else f"{PHASE_LABELS[phase]} {count} times, {ms(total)} in all"
            for phase, count, total in self.phases
        )
        return f"{self.label}: {told or 'nothing recorded'}."


@dataclass(frozen=True)
class Tick:
    left: float
    label: str

    @property
    def style(self) -> str:
        return f"left: {self.left:.3f}%"


@dataclass(frozen=True)
class Position:
    """A stretch of the axis and the step at its middle: what a click there opens."""

    left: float
    width: float
    step: int
    at: str  # the middle's time since the run began

    @property
    def style(self) -> str:
        return f"left: {self.left:.3f}%; width: {self.width:.3f}%"


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
    hidden_threads: int = 0  # threads not drawn

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
        if self.hidden_threads:
            said.append(f"{plural(self.hidden_threads, 'more thread')} not drawn.")
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
        if len(lane.spans) > MAX_SEGMENTS:
            segments = _merged(lane.spans, origin, axis)
        else:
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
        return DrawnLane(lane.label, segments, lane.kind, _phases(lane.spans))

    requests = [lane for lane in lanes.lanes if lane.kind == "request"]
    threads = [lane for lane in lanes.lanes if lane.kind == "thread"]
    hidden = hidden_threads = 0
    if max_requests is not None:
        hidden = max(len(requests) - max_requests, 0)
        hidden_threads = max(len(threads) - max_requests, 0)
    shown = (
        requests[: len(requests) - hidden]
        + [lane for lane in lanes.lanes if lane.kind not in ("request", "thread")]
        + threads[: len(threads) - hidden_threads]
    )
    strip = TimeStrip(
        lanes=[drawn(lane) for lane in shown],
        length=ms(lanes.length_ns),
        ticks=ticks(axis),
        hidden=hidden,
        hidden_threads=hidden_threads,
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
    positioned = dataclasses.replace(strip, positions=positions, current_position=0)
    return marked(positioned, lanes, at_ns, axis_ns) if at_ns is not None else positioned


def marked(strip: TimeStrip, lanes: Lanes, at_ns: int, axis_ns: int | None = None) -> TimeStrip:
    """``strip`` (drawn by time_strip with positions, on ``axis_ns``) with the instant
    ``at_ns`` marked: what each step of a player changes."""
    axis = max(axis_ns or 0, lanes.length_ns)
    marker = min(max((at_ns - lanes.origin_ns) / axis * 100, 0.0), 100.0)
    return dataclasses.replace(
        strip,
        marker=marker,
        marker_at=ms(max(0, at_ns - lanes.origin_ns)),
        current_position=min(int(marker / (100 / POSITIONS)), POSITIONS - 1),
    )


def _phases(spans: Sequence[Span]) -> tuple[tuple[str, int, int], ...]:
    totals: dict[str, list[int]] = {}
    for span in spans:
        total = totals.setdefault(span.phase, [0, 0])
        total[0] += 1
        total[1] += span.end_ns - span.start_ns
    return tuple((phase, count, ns) for phase, (count, ns) in totals.items())


def _merged(spans: Sequence[Span], origin: int, axis: int) -> list[Segment]:
    """MAX_SEGMENTS equal stretches of the axis, each in the phase that took most of its
    time (stretches with nothing drawn left out), runs of the same phase joined."""
    width = axis / MAX_SEGMENTS
    shares: list[dict[str, int]] = [{} for _ in range(MAX_SEGMENTS)]
    for span in spans:
        start, end = span.start_ns - origin, span.end_ns - origin
        first = min(max(int(start // width), 0), MAX_SEGMENTS - 1)
        last = min(max(int(end // width), 0), MAX_SEGMENTS - 1)
        for index in range(first, last + 1):
            overlap = min(end, (index + 1) * width) - max(start, index * width)
            share = shares[index]
            share[span.phase] = share.get(span.phase, 0) + max(int(overlap), 1)
    runs: list[list[Any]] = []  # [phase, first stretch, last stretch, ns in the phase]
    for index, share in enumerate(shares):
        if not share:
            continue
        phase = max(share, key=share.__getitem__)
        if runs and runs[-1][0] == phase and runs[-1][2] == index - 1:
            runs[-1][2] = index
            runs[-1][3] += share[phase]
        else:
            runs.append([phase, index, index, share[phase]])
    return [
        Segment(
            phase,
            f"mostly {PHASE_LABELS[phase]}: {ms(ns)} of {ms((last - first + 1) * width)}",
            first * 100 / MAX_SEGMENTS,
            (last - first + 1) * 100 / MAX_SEGMENTS,
            ns,
        )
        for phase, first, last, ns in runs
    ]


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
