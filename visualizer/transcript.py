"""A trace told in words: every step's narration, in order, for reading on the page (and
by screen readers and printers) or as a Markdown download."""

from __future__ import annotations

from dataclasses import dataclass, field

from visualizer.lab import lab_metrics
from visualizer.moments import KeyMoment, key_moments
from visualizer.player import narrate
from visualizer.scenarios import get_scenario
from visualizer.sources import TraceSource
from visualizer.steps import steps_from_trace

# The page shows this many steps; the Markdown download has them all.
PAGE_STEPS = 5000


@dataclass(frozen=True)
class TranscriptStep:
    number: int
    request: str | None
    at_ms: float | None  # since its request arrived
    thread: str
    text: str


@dataclass
class Transcript:
    recording_id: str
    title: str
    summary: list[str]
    moments: list[KeyMoment]
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
        lines += ["## Every step", ""]
        for step in self.steps:
            where = f" ({step.request}, {_at(step)}, {step.thread})" if step.request else ""
            lines.append(f"{step.number}. {step.text}{where}")
        return "\n".join(lines) + "\n"


def _at(step: TranscriptStep) -> str:
    return f"+{step.at_ms:.1f} ms" if step.at_ms is not None else "-"


def build_transcript(source: TraceSource) -> Transcript:
    document = source.document()
    scenario = get_scenario(source.scenario_slug)
    title = f"Transcript: {scenario.title if scenario else 'recording'} ({source.recording_id})"
    metrics = lab_metrics(document)
    server = document.get("server") or {}
    summary = [
        f"{len(document['requests'])} request(s) to "
        f"{scenario.run_url if scenario else 'the traced views'}, on "
        f"{str(server.get('interface', '?')).upper()} ({server.get('software') or 'unknown'}), "
        f"recorded {document.get('recorded_at', '')}.",
        f"{len(document['events'])} steps; all requests took {metrics.wall_ms:.0f} ms, the "
        f"slowest {metrics.max_ms:.0f} ms; the event loop was blocked for "
        f"{metrics.loop_blocked_ms:.0f} ms; views ran on {metrics.view_threads} thread(s).",
    ]
    transcript = Transcript(
        source.recording_id,
        title,
        summary,
        key_moments(document["events"], document["requests"]),
    )
    history: dict[str | None, list[dict[str, object]]] = {}
    for step in steps_from_trace(document):
        so_far = history.setdefault(step.request, [])
        so_far.append(step.event)
        transcript.steps.append(
            TranscriptStep(
                step.number, step.request, step.since_request_ms, step.thread, narrate(step, so_far)
            )
        )
    return transcript
