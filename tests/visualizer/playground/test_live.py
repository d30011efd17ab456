"""An edited run streams into the page while it runs, as a scenario's run does: the
scenario socket (Channels' test client) gets its rows before the run is over."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from tests.visualizer.playground.conftest import post_edit, recording_of
from tracer.django_integration import get_tracer
from tracer.recorder import RecordingStore
from visualizer.playground.editable import starting_code
from visualizer.playground.live import EditedRunMirror, run_streamed
from visualizer.routing import websocket_application
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.runs import RunRequest, new_recording_id
from visualizer.traces.archive import RecordingArchiver
from visualizer.traces.live import broadcaster
from visualizer.traces.models import Trace
from visualizer.traces.run_state import EDITED_PREFIX

HEADERS = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
# Each request awaits this long: the run goes on well after its first steps.
RUN = RunRequest(2, {"delay_ms": 1500})


class KeptMirror(EditedRunMirror):
    """A mirror that also keeps the reports it is given, to feed another one."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reports: list[dict[str, Any]] = []

    def __call__(self, report: dict[str, Any]) -> None:
        self.reports.append(copy.deepcopy(report))
        super().__call__(report)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_edited_runs_rows_reach_the_page_while_it_runs(bubblewrap, settings):
    settings.PLAYGROUND_WARM_WORKERS = 0
    scenario = SCENARIOS["async-sleep"]
    source = starting_code(scenario).replace(
        "time.sleep(delay_ms / 1000)", "await asyncio.sleep(delay_ms / 1000)"
    )
    recording_id = new_recording_id(EDITED_PREFIX)
    page = WebsocketCommunicator(
        websocket_application(), f"/ws/scenarios/async-sleep/?recording={recording_id}", HEADERS
    )
    assert (await page.connect())[0]
    assert "no recording" in await page.receive_from()  # not started yet

    mirror = KeptMirror(scenario, source, RUN, recording_id)
    run = asyncio.create_task(run_streamed(scenario, source, RUN, mirror))
    rows_while_running = []
    frames = []
    while not frames or "Finished:" not in frames[-1]:
        frames.append(await page.receive_from(timeout=60))
        if 'id="step-' in frames[-1] and 'hx-swap-oob="beforeend:#rows"' in frames[-1]:
            rows_while_running.append(not run.done())
    result = await run
    await page.disconnect()
    broadcaster.stop()

    assert result.document is not None and not result.stopped
    assert rows_while_running and rows_while_running[0], "no row came before the run ended"
    # Every step's row came, each once, in step order, before the end.
    streamed = [int(n) for f in frames for n in _step_ids(f)]
    assert streamed == list(range(1, len(result.document["events"]) + 1))
    # The live panels showed the code that runs, not the scenario's own.
    assert any("await asyncio.sleep(delay_ms / 1000)" in f for f in frames)
    stored = await Trace.objects.aget(recording_id=recording_id)
    assert stored.status == Trace.Status.COMPLETE
    assert stored.header["code"]["text"] == source

    # The worker's reports are untrusted: a report that does not check stops the mirror
    # there, and nothing after it is shown.
    tampered = copy.deepcopy(mirror.reports)
    events = [r for r in tampered if r.get("kind") == "event"]
    events[2]["event"]["locals"] = {"x": 1}  # values are strings
    other = EditedRunMirror(scenario, source, RUN, new_recording_id(EDITED_PREFIX))
    for report in tampered:
        other(report)
    mirrored = get_tracer().store.get(other.job["recording_id"])
    assert mirrored is not None and len(mirrored.events) == 2


def _step_ids(frame: str) -> list[str]:
    if 'hx-swap-oob="beforeend:#rows"' not in frame:
        return []
    return re.findall(r'<tr id="step-(\d+)"', frame)


def test_with_the_pages_script_run_answers_while_the_run_goes_on(playground_server):
    source = starting_code(SCENARIOS["async-sleep"]).replace(
        "time.sleep(delay_ms / 1000)", "await asyncio.sleep(delay_ms / 1000)"
    )

    server = playground_server
    answer, shown = post_edit(server, "async-sleep", source, stream=True, delay_ms="1500")

    assert answer.status_code == 302 and "&follow=1" in answer.headers["location"]
    assert shown is not None and shown.status_code == 200
    # The page shows the code that runs, escaped, while it runs.
    assert "await asyncio.sleep(delay_ms / 1000)" in shown.text
    so_far = recording_of(playground_server, shown)
    assert so_far["code"]["text"] == source
    deadline = time.monotonic() + 60
    while (document := recording_of(playground_server, shown))["requests"][0]["status"] is None:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.2)
    assert len(so_far["events"]) < len(document["events"])
    assert document["requests"][0]["status"] == 200 and document["code"]["text"] == source


@pytest.mark.django_db
def test_the_archiver_leaves_an_edited_run_to_its_run():
    recording = RecordingStore().get_or_create(new_recording_id(EDITED_PREFIX))
    recording.new_request("GET", "/run/async-sleep/", 1).finished_ns = 2

    assert RecordingArchiver().save_now(recording) is None
    assert not Trace.objects.filter(recording_id=recording.id).exists()
