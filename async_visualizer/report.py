"""One recording as the page and the command show it: its steps, where each request's time
went and, at one step, the player's picture of the server, its time strip and the key
moments, from its trace document alone (no database: the project has none of our tables)."""

from __future__ import annotations

from typing import Any

from tracer.breakdown import PART_LABELS, breakdowns
from tracer.events import TraceDocument
from tracer.picture import Picture
from visualizer.traces.loop_picture import loop_picture
from visualizer.traces.moments import key_moments
from visualizer.traces.narration import context_of_document
from visualizer.traces.steps import render_text, steps_from_trace
from visualizer.traces.time_strip import lanes_of, step_times, time_strip


def recording_report(document: TraceDocument, step: int = 1) -> dict[str, Any]:
    """What the recording page shows at ``step`` (1 to the number of events): the
    document's id, requests, steps, breakdowns, and the step's picture, strip and moments."""
    steps = steps_from_trace(document)
    current = next(row for row in steps if row.number == step)
    lanes = lanes_of(document)
    return {
        "id": document["id"],
        "document": document,
        "requests": document["requests"],
        "steps": steps,
        "step": step,
        "previous": step - 1 if step > 1 else None,
        "next": step + 1 if step < len(steps) else None,
        # The names templates/includes/picture.html reads.
        "state": {"picture": loop_picture(Picture(document), step), "current": current},
        "strip": (
            time_strip(lanes, times=step_times(document["events"]), at_ns=current.event["t_ns"])
            if lanes is not None
            else None
        ),
        "moments": key_moments(
            document["events"], document["requests"], context_of_document(document)
        ),
        "breakdowns": breakdowns_of(document),
    }


def breakdowns_of(document: TraceDocument) -> list[dict[str, Any]]:
    """Where each request's time went, in milliseconds, the parts it spent none in left out."""
    return [
        {
            "request": breakdown.request,
            "duration_ms": breakdown.duration_ns / 1e6,
            "parts": [
                {"label": PART_LABELS[part], "ms": ns / 1e6}
                for part, ns in breakdown.parts.items()
                if ns
            ],
        }
        for breakdown in breakdowns(document)
    ]


def report_text(document: TraceDocument) -> str:
    """The execution table, the variable trackers and where the time went, as plain text."""
    lines = [render_text(document), "", "Where the time went"]
    for breakdown in breakdowns_of(document):
        lines.append(f"  {breakdown['request']}: {breakdown['duration_ms']:.1f} ms")
        lines += [f"    {part['ms']:8.1f} ms  {part['label']}" for part in breakdown["parts"]]
    return "\n".join(lines)
