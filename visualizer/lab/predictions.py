"""Predict, then reveal: the lab's questions before a run, and what the run's trace answers."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from tracer.events import Event, TraceDocument
from visualizer.lab.metrics import lab_metrics
from visualizer.scenarios.catalog import Scenario
from visualizer.traces.narration import context_of_document, reveal_reasons
from visualizer.traces.threads import most_overlapping

OVERLAP_CHOICES = {
    "together": "all at the same time",
    "partly": "partly overlapping",
    "one-by-one": "one after another",
}


NO_PAUSE = "none"


def pause_choices(scenario: Scenario) -> dict[str, str]:
    """Answers to "where does the view pause?": each statement line of the view, and
    nowhere. Which is right comes from the trace, after the run."""
    lines, start = inspect.getsourcelines(scenario.view)
    choices = {}
    for number, text in enumerate(lines[1:], start=start + 1):
        code = text.strip()
        if code and not code.startswith(("#", ")", "]", "}")):
            choices[str(number)] = f"line {number}: {code}"
    choices[NO_PAUSE] = "nowhere: it runs straight through without pausing at an await"
    return choices


@dataclass(frozen=True)
class Pause:
    """Where the trace saw the view pause: a line, the awaited expression, and the first
    step (of the first request) that shows it."""

    line: int
    awaiting: str
    request: str | None
    step: int


@dataclass(frozen=True)
class Reveal:
    """The trace's answers to the questions asked before the run, and why."""

    overlap: str  # a key of OVERLAP_CHOICES
    wall_ms: float
    reasons: list[str]
    pauses: list[Pause] = field(default_factory=list)
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


def reveal(
    document: TraceDocument,
    predicted_overlap: str | None,
    predicted_wall_ms: int | None,
    predicted_pause: str | None = None,
) -> Reveal:
    """How the requests really ran, in words computed from the trace's events."""
    events = document["events"]
    pauses: dict[int, Pause] = {}
    for event in events:
        line = event["line"]
        if event["kind"] == "await.suspended" and line is not None and line not in pauses:
            pauses[line] = Pause(line, event["awaiting"], event["request"], event["seq"])
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
        predicted_overlap=predicted_overlap if predicted_overlap in OVERLAP_CHOICES else None,
        predicted_wall_ms=predicted_wall_ms,
        predicted_pause=predicted_pause or None,
    )


def _view_spans(events: list[Event]) -> list[tuple[int, int]]:
    started = {e["request"]: e["t_ns"] for e in events if e["kind"] == "view.started"}
    return [
        (started[e["request"]], e["t_ns"])
        for e in events
        if e["kind"] == "view.returned" and e["request"] in started
    ]
