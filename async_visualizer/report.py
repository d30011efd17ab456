"""One recording as the page and the command show it: its steps and where each request's
time went, from its trace document alone."""

from __future__ import annotations

from typing import Any

from tracer.breakdown import PART_LABELS, breakdowns
from tracer.events import TraceDocument
from visualizer.traces.steps import render_text, steps_from_trace


def recording_report(document: TraceDocument) -> dict[str, Any]:
    """What the recording page shows: the document's id, requests, steps and breakdowns."""
    return {
        "id": document["id"],
        "document": document,
        "requests": document["requests"],
        "steps": steps_from_trace(document),
        "breakdowns": [
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
        ],
    }


def report_text(document: TraceDocument) -> str:
    """The execution table, the variable trackers and where the time went, as plain text."""
    lines = [render_text(document), "", "Where the time went"]
    for breakdown in recording_report(document)["breakdowns"]:
        lines.append(f"  {breakdown['request']}: {breakdown['duration_ms']:.1f} ms")
        lines += [f"    {part['ms']:8.1f} ms  {part['label']}" for part in breakdown["parts"]]
    return "\n".join(lines)
