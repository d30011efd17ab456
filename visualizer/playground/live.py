"""Stream a run of edited code while it goes on, as a scenario's run is streamed.

Each event the worker reports is checked on its own, like an event of an imported trace,
and mirrored into this server's recording store (in the worker's reading thread); the live
broadcaster (visualizer/traces/live.py) renders the new rows once and sends them to the
pages watching the recording. Once the run is over, its trace is the worker's whole
document, checked again (visualizer/playground/runs.py), and stored in the library.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, cast

from channels.db import database_sync_to_async

from tracer.django_integration import get_tracer
from tracer.events import Event
from tracer.recorder import Recording
from tracer.validation import TraceRejected, validate_trace
from visualizer.playground.runs import (
    EditedRun,
    edited_code,
    job_for,
    note_request,
    run_edited,
    streamed_document,
)
from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.consumers import finished_frame
from visualizer.scenarios.runs import RunRequest
from visualizer.traces.live import broadcaster
from visualizer.traces.models import Trace
from visualizer.traces.run_state import OPEN

logger = logging.getLogger(__name__)


class EditedRunMirror:
    """The worker's reports of one run (an ``OnReport``), mirrored into the tracer's store
    as they come, each event checked before it is shown. The first report that does not
    check ends the mirroring (the page then has what came before it; the run's end says
    what came of it). ``started`` is set once the first event is in."""

    def __init__(self, scenario: Scenario, source: str, run: RunRequest, recording_id: str):
        self.job = job_for(scenario, source, run, recording_id)
        self.code = edited_code(self.job, source, [], "")
        self.started = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._header: dict[str, Any] | None = None
        self._requests: dict[object, dict[str, Any]] = {}
        self._recording: Recording | None = None
        self._broken = False

    def __call__(self, report: dict[str, Any]) -> None:
        if self._broken:
            return
        try:
            if report.get("kind") == "header" and self._header is None:
                self._take_header(report.get("recording"))
            elif report.get("kind") == "event" and self._header is not None:
                self._take_event(report.get("event"))
        except (TraceRejected, KeyError, TypeError, AssertionError):
            # Untrusted: the code that ran could have written anything in its report.
            self._broken = True

    def _checked(self, events: list[Any]) -> None:
        assert self._header is not None
        document = streamed_document(self._header, list(self._requests.values()), events, self.job)
        scenario = validate_trace(document)["scenario"]
        assert scenario is not None and scenario["slug"] == self.job["slug"]

    def _take_header(self, header: object) -> None:
        assert isinstance(header, dict)
        self._header = copy.deepcopy(header)
        self._checked([])
        recording = get_tracer().store.get_or_create(self.job["recording_id"])
        recording.scenario = self._header["scenario"]
        recording.server = self._header["server"]
        recording.tracer = self._header["tracer"]
        recording.recorded_at = self._header["recorded_at"]
        recording.code = self.code
        recording.mirror_requests([], [], 0)
        self._recording = recording

    def _take_event(self, raw: object) -> None:
        assert isinstance(raw, dict) and self._recording is not None
        event = copy.deepcopy(raw)
        note_request(self._requests, event, self.job)
        # Checked alone (as the first step), with the requests the events so far tell.
        self._checked([{**event, "seq": 1}])
        # Checked above, field by field.
        self._recording.mirror_requests(cast(Any, list(self._requests.values())), [], 0)
        self._recording.append(cast(Event, event))
        if len(self._recording.events) == 1:
            self._loop.call_soon_threadsafe(self.started.set)


async def run_streamed(
    scenario: Scenario, source: str, run: RunRequest, mirror: EditedRunMirror | None
) -> EditedRun:
    """Run the edited code (its events mirrored as they come, given a mirror); once it is
    over, store its trace, and tell the pages watching it what came of it."""
    recording_id = mirror.job["recording_id"] if mirror else None
    if recording_id:
        OPEN.add(recording_id)
    try:
        result = await run_edited(scenario, source, run, mirror, recording_id)
        if result.document is not None:
            # A run a limit stopped is cut off; any other is complete, whatever its view did.
            status = Trace.Status.INTERRUPTED if result.partial else Trace.Status.COMPLETE
            await database_sync_to_async(Trace.store)(
                result.document, source=Trace.Source.RECORDED, status=status
            )
    finally:
        if recording_id:
            OPEN.discard(recording_id)
    if recording_id and result.document is not None:
        broadcaster.send_after_pending_steps(
            recording_id, finished_frame(scenario, result.document, result.stopped)
        )
    return result
