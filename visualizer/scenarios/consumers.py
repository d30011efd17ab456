"""The scenario page's WebSocket: start runs, and stream their steps as they happen."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from tracer.django_integration import RECORDING_ID
from tracer.events import TraceDocument
from visualizer.limits import LimitReached, client_of, limits
from visualizer.scenarios.catalog import Scenario, get_scenario
from visualizer.scenarios.runs import (
    RunFailed,
    RunRequest,
    new_recording_id,
    record_run,
    subject_base_url,
)
from visualizer.traces.live import LIVE_PREFIX, broadcaster, group_name
from visualizer.traces.narration import plural
from visualizer.traces.pages import (
    empty_source,
    render_error,
    render_moments,
    render_snapshot,
    render_status,
    snapshot_of,
)
from visualizer.traces.run_state import going_on, tracked_run

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096
# Keys the run form sends besides its fields (htmx adds HEADERS; Django's CSRF token).
IGNORED_KEYS = {"HEADERS", "csrfmiddlewaretoken"}
ACTIONS = {
    "run": {"action", "requests", "delay_ms", "work", "size_kb"},
    "sync": {"action", "recording"},
}


RUN_GOING_ON = "This run is going on: its steps come in as they are recorded."


def gone(recording_id: str) -> str:
    return (
        f"There is no recording {recording_id} on this server: it was deleted, or the server "
        "stopped before it had stored anything of the run."
    )


class MessageRejected(Exception):
    """A message from the browser that is not one we accept; the text says why."""


def parse_message(
    text: str | None,
    actions: dict[str, set[str]] = ACTIONS,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> dict[str, Any]:
    """Check a browser message: a small JSON object with a known action and known keys."""
    if text is None:
        raise MessageRejected("Messages must be text (JSON), not binary.")
    if len(text.encode()) > max_bytes:
        raise MessageRejected(f"Messages may be at most {max_bytes} bytes.")
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise MessageRejected("Messages must be JSON objects.") from None
    if not isinstance(message, dict):
        raise MessageRejected("Messages must be JSON objects.")
    action = message.get("action")
    if not isinstance(action, str) or action not in actions:
        raise MessageRejected(f"Unknown action; expected one of: {', '.join(actions)}.")
    unknown = set(message) - actions[action] - IGNORED_KEYS
    if unknown:
        raise MessageRejected(f"Unexpected fields for {action}: {', '.join(sorted(unknown))}.")
    if action == "sync":
        recording = message.get("recording")
        if not isinstance(recording, str) or not RECORDING_ID.fullmatch(recording):
            raise MessageRejected("sync needs a valid recording id.")
    return message


class ScenarioConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """One browser tab on a scenario page."""

    scenario: Scenario
    watching: str | None = None
    run_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Accept, then send the current snapshot of the recording the page shows."""
        scenario = get_scenario(self.scope["url_route"]["kwargs"]["slug"])
        if scenario is None:
            await self.close(code=4404)
            return
        self.scenario = scenario
        broadcaster.start()
        await self.accept()
        query = self.scope.get("query_string", b"").decode("latin-1")
        recording = query.removeprefix("recording=") if query.startswith("recording=") else ""
        if RECORDING_ID.fullmatch(recording):
            await self.watch(recording)

    async def disconnect(self, code: int) -> None:
        if self.watching:
            await self.channel_layer.group_discard(group_name(self.watching), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for every message from the browser; a bad one gets an error frame."""
        try:
            message = parse_message(text_data)
            if message["action"] == "run":
                await self.start_run(RunRequest.from_values(self.scenario, message))
            else:
                await self.watch(message["recording"])
        except (MessageRejected, ValueError) as error:
            await self.send(text_data=render_error(str(error)))

    async def trace_step(self, message: dict[str, Any]) -> None:
        """Called for each rendered step of the watched recording: pass it on."""
        for frame in message["frames"]:
            await self.send(text_data=frame)

    async def watch(self, recording_id: str, *, new: bool = False) -> None:
        """Follow a recording's live steps, starting from a snapshot of what it holds. One
        that is not ``new`` and is nowhere (a run the server stopped before it stored
        anything, or deleted since) is said to be gone: the page may still say "Running"."""
        if self.watching != recording_id:
            if self.watching:
                await self.channel_layer.group_discard(group_name(self.watching), self.channel_name)
            await self.channel_layer.group_add(group_name(recording_id), self.channel_name)
            self.watching = recording_id
        snapshot = await database_sync_to_async(snapshot_of)(self.scenario, recording_id)
        if snapshot is not None:
            if going_on(recording_id):
                snapshot += render_status(RUN_GOING_ON, running=True)
            await self.send(text_data=snapshot)
        elif not new:
            await self.send(text_data=render_status(gone(recording_id), running=False))

    async def start_run(self, run: RunRequest) -> None:
        if self.run_task is not None and not self.run_task.done():
            raise MessageRejected("A run is already in progress; wait for it to finish.")
        try:
            limits().check_work(run.requests, run.params)
            limits().live_runs.acquire(client_of(self.scope))
        except LimitReached as error:
            raise MessageRejected(str(error)) from None
        try:
            recording_id = new_recording_id(LIVE_PREFIX)
            await self.watch(recording_id, new=True)
            empty = render_snapshot(self.scenario, empty_source(recording_id))
            running = render_status(
                f"Running {plural(run.requests, 'request')} against {self.scenario.run_url}…",
                running=True,
            )
            await self.send(text_data=empty + running)
        except BaseException:
            limits().live_runs.release(client_of(self.scope))
            raise
        self.run_task = asyncio.create_task(self._run(run, recording_id))

    async def _run(self, run: RunRequest, recording_id: str) -> None:
        try:
            await self._record(run, recording_id)
        finally:
            limits().live_runs.release(client_of(self.scope))

    async def _record(self, run: RunRequest, recording_id: str) -> None:
        try:
            # Stored at once as recording; complete once done, else interrupted.
            async with tracked_run(recording_id, self.scenario):
                document = await record_run(
                    await subject_base_url(),
                    self.scenario,
                    requests=run.requests,
                    params=run.params,
                    recording_id=recording_id,
                )
        except (RunFailed, OSError) as error:
            broadcaster.send_after_pending_steps(
                recording_id, render_status(f"The run failed: {error}", running=False)
            )
            return
        broadcaster.send_after_pending_steps(recording_id, finished_frame(self.scenario, document))


def finished_frame(scenario: Scenario, document: TraceDocument, stopped: str = "") -> str:
    """What a page watching a run is sent once the run is over: what came of it, in a
    sentence, and its key moments."""
    slowest = max((r["duration_ns"] or 0 for r in document["requests"]), default=0) / 1_000_000
    said = (
        f"Finished: {plural(len(document['requests']), 'request')}, "
        f"{len(document['events'])} steps; the slowest took {slowest:.0f} ms."
    )
    if stopped:
        said = f"{stopped} It recorded {plural(len(document['events']), 'step')} until then."
    return render_status(said, running=False) + render_moments(scenario, document)
