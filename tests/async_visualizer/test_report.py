"""The recording page, rendered from a trace document alone: what came from the trace is
escaped, wherever the player's pieces show it."""

from __future__ import annotations

import json
from pathlib import Path

from django.template import Context, Engine
from django.test import override_settings

import async_visualizer
from async_visualizer.report import recording_report
from visualizer.server_process import BASE_DIR

# A step of that example where r3 is suspended at its await and r1 ready after its own.
STEP = 20
HOSTILE = '<script>alert("trace")</script>'


def test_it_escapes_the_traces_values_in_the_picture_and_key_moments() -> None:
    document = json.loads(
        (BASE_DIR / "visualizer/traces/examples/async-io-4-requests.json").read_text()
    )
    for event in document["events"]:
        if "awaiting" in event:
            event["awaiting"] = HOSTILE
    engine = Engine(dirs=[Path(async_visualizer.__file__).parent / "templates"])
    with override_settings(ROOT_URLCONF="tests.async_visualizer.recording_urls"):
        page = engine.get_template("async_visualizer/recording.html").render(
            Context({"report": recording_report(document, STEP)})
        )
    assert "<script>" not in page
    escaped = "&lt;script&gt;alert(&quot;trace&quot;)&lt;/script&gt;"
    # In the picture (the awaited call) and the key moments (the longest await).
    assert f"r3</strong> awaits {escaped}" in page
    assert f"ready to go on after {escaped}" in page
    assert f"The view pauses at await {escaped}" in page
