"""Predict, then reveal: the lab's questions before a run, and what the run's trace answers."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from tracer import events as kinds
from tracer.events import CallBlocking, Event, TraceDocument
from visualizer.lab.metrics import lab_metrics
from visualizer.scenarios.catalog import Scenario
from visualizer.traces.narration import context_of_document, ms, reveal_reasons
from visualizer.traces.threads import most_overlapping

OVERLAP_CHOICES = {
    "together": "all at the same time",
    "partly": "partly overlapping",
    "one-by-one": "one after another",
}


NO_PAUSE = "none"


def pause_question(scenario: Scenario) -> str:
    """The question, as it means something for the view: an ``async def`` view pauses at
    its awaits; a plain ``def`` one never does, but its thread waits (in a blocking call)."""
    if inspect.iscoroutinefunction(scenario.view):
        return "Where does the view pause?"
    return "Where does the view's thread wait? (a plain def view never pauses at an await)"


def pause_choices(scenario: Scenario) -> dict[str, str]:
    """Answers to the pause question: each statement line of the view, and nowhere. Which
    is right comes from the trace, after the run."""
    lines, start = inspect.getsourcelines(scenario.view)
    choices = {}
    for number, text in enumerate(lines[1:], start=start + 1):
        code = text.strip()
        if code and not code.startswith(("#", ")", "]", "}")):
            choices[str(number)] = f"line {number}: {code}"
    choices[NO_PAUSE] = (
        "nowhere: it runs straight through without pausing at an await"
        if inspect.iscoroutinefunction(scenario.view)
        else "nowhere: its thread never waits"
    )
    return choices


@dataclass(frozen=True)
class Pause:
    """Where the trace saw the view pause: a line, the awaited expression, and the first
    step (of the first request) that shows it. For a plain ``def`` view, where its thread
    waited: the line, the blocking call, and for how long (``waited``)."""

    line: int
    awaiting: str
    request: str | None
    step: int
    waited: str | None = None  # a plain def view's thread waiting in a call, for this long


@dataclass(frozen=True)
class Reveal:
    """The trace's answers to the questions asked before the run, and why."""

    overlap: str  # a key of OVERLAP_CHOICES
    wall_ms: float
    reasons: list[str]
    pauses: list[Pause] = field(default_factory=list)
    # The view is a plain def: the question was where its thread waits.
    sync_view: bool = False
    predicted_overlap: str | None = None
    predicted_wall_ms: int | None = None
    predicted_pause: str | None = None  # a key of pause_choices

    @property
    def pause_right(self) -> bool | None:
        if self.predicted_pause is None:
            return None
        if self.predicted_pause == NO_PAUSE:
            return not self.pauses
        return self.predicted_pause in {str(pause.line) for pause in self.pauses}

    @property
    def overlap_right(self) -> bool | None:
        return None if self.predicted_overlap is None else self.predicted_overlap == self.overlap

    @property
    def wall_error_percent(self) -> float | None:
        if self.predicted_wall_ms is None or not self.wall_ms:
            return None
        return (self.predicted_wall_ms - self.wall_ms) / self.wall_ms * 100

    @property
    def wall_comparison(self) -> str | None:
        """How the run's time compares with the prediction, the way round a person says it:
        "11x faster than you expected", "2.5x slower than you expected"."""
        predicted, took = self.predicted_wall_ms, self.wall_ms
        if predicted is None or not took:
            return None
        if predicted == 0:
            return "you expected no time at all"
        ratio = max(predicted, took) / min(predicted, took)
        if ratio < 1.1:
            return "about what you expected"
        times = f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"
        return f"{times} {'faster' if took < predicted else 'slower'} than you expected"


def reveal(
    document: TraceDocument,
    predicted_overlap: str | None,
    predicted_wall_ms: int | None,
    predicted_pause: str | None = None,
) -> Reveal:
    """How the requests really ran, in words computed from the trace's events."""
    events = document["events"]
    checked = [e for e in events if e["kind"] == kinds.VIEW_TYPE_CHECKED]
    sync_view = bool(checked) and not any(e["is_async"] for e in checked)
    pauses: dict[int, Pause] = {}
    for event in events:
        line = event["line"]
        if line is None or line in pauses:
            continue
        if event["kind"] == kinds.AWAIT_SUSPENDED:
            pauses[line] = Pause(line, event["awaiting"], event["request"], event["seq"])
        elif sync_view and event["kind"] == kinds.CALL_BLOCKING and _thread_waited(event):
            pauses[line] = Pause(
                line, event["callable"], event["request"], event["seq"], ms(event["duration_ns"])
            )
    views = _view_spans(events)
    most_at_once = most_overlapping(views)
    if len(views) <= 1 or most_at_once == len(views):
        overlap = "together"
    elif most_at_once == 1:
        overlap = "one-by-one"
    else:
        overlap = "partly"
    reasons = reveal_reasons(events, context_of_document(document), together=most_at_once > 1)
    return Reveal(
        overlap=overlap,
        wall_ms=lab_metrics(document).wall_ms,
        reasons=reasons,
        pauses=sorted(pauses.values(), key=lambda pause: pause.line),
        sync_view=sync_view,
        predicted_overlap=predicted_overlap if predicted_overlap in OVERLAP_CHOICES else None,
        predicted_wall_ms=predicted_wall_ms,
        predicted_pause=predicted_pause or None,
    )


def _thread_waited(event: CallBlocking) -> bool:
    """A slow call in which a view's thread (not the event loop) waited, not computing."""
    if event["on_event_loop"]:
        return False
    cause = event.get("cause")
    return cause == kinds.CAUSE_WAITING if cause is not None else bool(event["waiting"])


def _view_spans(events: list[Event]) -> list[tuple[int, int]]:
    started = {e["request"]: e["t_ns"] for e in events if e["kind"] == "view.started"}
    return [
        (started[e["request"]], e["t_ns"])
        for e in events
        if e["kind"] == "view.returned" and e["request"] in started
    ]
