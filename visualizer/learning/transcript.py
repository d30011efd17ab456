"""A trace told in words: every step's narration, in order, for reading on the page (and
by screen readers and printers) or as a Markdown download."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from tracer import events as kinds
from tracer.events import Event, TraceDocument
from visualizer.lab.metrics import lab_metrics
from visualizer.scenarios.catalog import get_scenario
from visualizer.traces.moments import KeyMoment, key_moments
from visualizer.traces.narration import TraceContext, context_of_document, plural
from visualizer.traces.player import narrate
from visualizer.traces.sources import TraceSource
from visualizer.traces.steps import run_start_ns, step_rows
from visualizer.traces.time_went import TimeWent, time_went

# The page shows this many steps; the Markdown download has them all.
PAGE_STEPS = 5000


@dataclass(frozen=True)
class TranscriptStep:
    number: int
    request: str | None
    at_ms: float | None  # since its request arrived
    thread: str
    text: str
    run_ms: float | None = None  # since the run began

    @property
    def where(self) -> str:
        """When and where the step happened: on the run's clock, on its request's own, and
        the thread."""
        told = [f"{self.run_ms:.1f} ms since the run began"] if self.run_ms is not None else []
        if self.request:
            own = f"{self.at_ms:.1f} ms after it arrived" if self.at_ms is not None else ""
            told.append(f"{self.request}{', ' + own if own else ''}")
        told.append(f"on {self.thread}")
        return "; ".join(told)


@dataclass
class Transcript:
    recording_id: str
    title: str
    summary: list[str]
    moments: list[KeyMoment]
    time_went: TimeWent | None = None
    steps: list[TranscriptStep] = field(default_factory=list)

    @property
    def page_steps(self) -> list[TranscriptStep]:
        return self.steps[:PAGE_STEPS]

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", *(f"- {line}" for line in self.summary), ""]
        if self.moments:
            lines += ["## Key moments", ""]
            lines += [f"- Step {m.step}: **{m.title}.** {m.explanation}" for m in self.moments]
            lines.append("")
        if self.time_went and self.time_went.bars:
            lines += ["## Where the time went", ""]
            verdict = self.time_went.verdict
            if verdict:
                lines += [
                    f"{' '.join(verdict.sentences)} [{verdict.next_text}]({verdict.next_url})",
                    "",
                ]
            lines += [f"- {bar.sentence}" for bar in self.time_went.bars]
            if self.time_went.more:
                lines.append(f"- and {plural(self.time_went.more, 'more request')}")
            lines.append("")
        lines += ["## Every step", ""]
        for step in self.steps:
            lines.append(f"{step.number}. {step.text} ({step.where})")
        return "\n".join(lines) + "\n"


def recorded_on(recorded_at: object) -> str:
    """The document's ``recorded_at`` (ISO 8601) as a person writes a date and time."""
    try:
        when = datetime.datetime.fromisoformat(str(recorded_at))
    except ValueError:
        return "at a time the trace does not tell"
    zone = " UTC" if when.utcoffset() == datetime.timedelta(0) else ""
    return f"on {when.day} {when:%B %Y} at {when:%H:%M}{zone}"


def build_transcript(source: TraceSource) -> Transcript:
    document = source.document()
    scenario = get_scenario(source.scenario_slug)
    title = f"Transcript: {scenario.title if scenario else 'a recording'}"
    metrics = lab_metrics(document)
    server = document.get("server") or {}
    context = context_of_document(document)
    requests = len(document["requests"])
    took = (
        f"all took {metrics.wall_ms:.0f} ms, the slowest {metrics.max_ms:.0f} ms"
        if requests > 1
        else f"it took {metrics.max_ms:.0f} ms"
    )
    loop = (
        f"; the event loop was blocked for {metrics.loop_blocked_ms:.0f} ms" if context.asgi else ""
    )
    summary = [
        f"{plural(requests, 'request')} to "
        f"{scenario.run_url if scenario else 'the traced views'}, on "
        f"{str(server.get('interface', '?')).upper()} ({server.get('software') or 'unknown'}), "
        f"recorded {recorded_on(document.get('recorded_at'))}.",
        f"{len(document['events'])} steps; {took}{loop}; {_threads(document, context)}.",
    ]
    transcript = Transcript(
        source.recording_id,
        title,
        summary,
        key_moments(document["events"], document["requests"], context),
        time_went(document),
    )
    received = {r["id"]: r["received_ns"] for r in document["requests"]}
    history: dict[str | None, list[Event]] = {}
    run_start = run_start_ns(document["requests"])
    for step in step_rows(document["events"], received, run_start, context=context):
        so_far = history.setdefault(step.request, [])
        so_far.append(step.event)
        transcript.steps.append(
            TranscriptStep(
                step.number,
                step.request,
                step.since_request_ms,
                step.thread,
                narrate(step, so_far, context),
                step.since_run_ms,
            )
        )
    return transcript


def _threads(document: TraceDocument, context: TraceContext) -> str:
    """On how many threads the work was done, in the server's terms: the threads that took
    the requests under WSGI (an async view's private loop runs in a helper thread while
    that thread waits), the threads the views ran on otherwise."""
    if context.wsgi:
        took = {e["thread"] for e in document["events"] if e["kind"] == kinds.REQUEST_RECEIVED}
        return f"the server took them on {plural(len(took), 'thread')}"
    ran = {e["thread"] for e in document["events"] if e["kind"] == kinds.VIEW_STARTED}
    return f"the views ran on {plural(len(ran), 'thread')}"
