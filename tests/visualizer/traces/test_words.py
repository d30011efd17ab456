"""The player's words on real recordings: one clock for the whole run beside each request's
own, the panels saying which request they show, and no internal ids or raw timestamps."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client

from visualizer.learning.transcript import build_transcript, recorded_on
from visualizer.scenarios.catalog import get_scenario
from visualizer.traces.library import EXAMPLES_DIR, import_trace
from visualizer.traces.pages import player_context
from visualizer.traces.player import player_state
from visualizer.traces.sources import DocumentSource
from visualizer.traces.steps import render_text, run_start_ns, steps_from_trace

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_bytes())


def visible_text(page: str) -> str:
    """The page's text as read: no tags, attributes, scripts or styles."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def panels_at(document: dict[str, Any], step: int) -> str:
    scenario = get_scenario((document.get("scenario") or {}).get("slug") or "")
    state = player_state(scenario, DocumentSource(document), step)
    context = player_context(scenario, state, link_query="", current_index=step)
    return render_to_string("traces/player.html#player", context)


@pytest.mark.parametrize("name", ["async-io-4-requests", "sync-io-4-requests"])
def test_each_step_has_the_runs_clock_and_its_requests_own(name):
    document = example(name)
    start = run_start_ns(document["requests"])
    arrived = {r["id"]: r["received_ns"] for r in document["requests"]}
    assert start is not None and start < min(arrived.values())

    steps = steps_from_trace(document)

    later = [s for s in steps if s.request and s.request != document["requests"][0]["id"]]
    assert later, "the run has steps of requests after the first"
    for step in steps:
        assert step.since_run_ms == pytest.approx((step.event["t_ns"] - start) / 1e6)
        if step.request:
            own = (step.event["t_ns"] - arrived[step.request]) / 1e6
            assert step.since_request_ms == pytest.approx(own)
    # Overlapping requests read as overlapping: on the run's clock a later request's steps
    # interleave with the first's, whatever their own clocks say.
    step = later[0]
    assert step.since_run_ms > step.since_request_ms
    row = re.search(rf'<tr id="step-{step.number}".*?</tr>', panels_at(document, step.number), re.S)
    assert (
        row
        and f"{step.since_run_ms:.1f} ms" in row[0]
        and f"{step.since_request_ms:.1f} ms" in row[0]
    )
    assert "Run time" in render_text(document) and "Req time" in render_text(document)


def test_the_code_flow_and_picture_say_which_request_they_show():
    document = example("async-io-4-requests")
    suspended = [e for e in document["events"] if e["kind"] == "await.suspended"][1]
    request = suspended["request"]

    page = panels_at(document, suspended["seq"])

    note = re.search(r'<p class="panel-note" id="source-note">(.*?)</p>', page)
    assert (
        note
        and html.unescape(note[1])
        == f"▶ line {suspended['line']}: where {request} is at this step."
    )
    assert f"Concept flow of {request}</h2>" in page
    assert f"the step is {request}'s" in page
    # A step of Django's code (its request_started receivers, in a thread) marks no line.
    hop = next(e for e in document["events"] if e["kind"] == "thread.hop")
    note = re.search(r'id="source-note">(.*?)</p>', panels_at(document, hop["seq"]))
    assert note and note[1].startswith(f"{hop['request']} is not in the view")


@pytest.mark.django_db
def test_no_recording_id_or_iso_timestamp_is_on_screen():
    document = example("sync-io-4-requests")
    document["id"] = "internal-id-7f3a"
    trace = import_trace(json.dumps(document).encode())
    client = Client()
    pages = [
        client.get(f"/traces/{trace.recording_id}/?step=5", follow=True).content.decode(),
        client.get(f"/traces/{trace.recording_id}/quiz/").content.decode(),
        client.get(f"/traces/{trace.recording_id}/transcript/").content.decode(),
        client.get(f"/lab/?recording={trace.recording_id}").content.decode(),
    ]
    for page in pages:
        text = visible_text(page)
        assert "internal-id-7f3a" not in text
        assert not ISO_TIME.search(text)
    transcript = build_transcript(DocumentSource(document))
    assert f"recorded {recorded_on(document['recorded_at'])}" in " ".join(transcript.summary)
    assert not ISO_TIME.search(transcript.markdown())
    assert recorded_on("2026-12-03T09:16:00+00:00") == "on 3 December 2026 at 09:16 UTC"
    assert recorded_on("") == "at a time the trace does not tell"
