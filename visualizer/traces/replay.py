"""One-file replay: a recording as one HTML file that opens from disk, with no server and
no network. Every step's player is rendered here by the same partial the pages use (so the
file shows what the page shows: code, narration, variable tracker, table, flow), kept in
``<template>`` elements; the page's stylesheet and a small script that steps between them
(buttons, slider, keys) are inline."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string

from visualizer.scenarios.catalog import Scenario
from visualizer.traces.pages import key_moments_of, player_context
from visualizer.traces.player import player_state
from visualizer.traces.sources import TraceSource

# A file holds at most this many steps (about 20 KB each: 40 steps make an 850 KB file);
# a longer recording's file says where it stops.
MAX_STEPS = 300
STATIC = Path(settings.BASE_DIR) / "static" / "visualizer"
# The page's stylesheets (templates/base.html), inline.
STYLESHEETS = ("app.css", "picture.css")


def replay_file(scenario: Scenario | None, source: TraceSource) -> str:
    """The whole file, as text."""
    total = source.total
    shown = min(total, MAX_STEPS)
    steps = []
    for index in range(1, shown + 1):
        state = player_state(scenario, source, index)
        context = player_context(scenario, state, link_query="", current_index=index)
        steps.append(render_to_string("traces/player.html#player", context))
    return render_to_string(
        "traces/replay_file.html",
        {
            "scenario": scenario,
            "recording_id": source.recording_id,
            "steps": steps,
            "total": total,
            "shown": shown,
            "moments": [m for m in key_moments_of(source) if m.step <= shown],
            "stylesheet": "\n".join((STATIC / name).read_text() for name in STYLESHEETS),
            "script": (STATIC / "replay.js").read_text(),
        },
    )
