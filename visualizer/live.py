"""Stream live runs to the pages watching them.

The tracer tells its listeners about every event, on whatever thread recorded it. For
recordings started from a page (ids beginning with ``live-``) the broadcaster queues the
event, renders the step's HTML once, off the event loop, and sends it to the recording's
group; each watching consumer forwards it to its browser unchanged. Steps that arrive
faster than they can be rendered are sent together.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from channels.layers import get_channel_layer

from tracer.django_integration import get_tracer
from tracer.events import Event
from tracer.recorder import Recording
from visualizer.pages import render_live_panels, render_live_rows
from visualizer.scenarios import get_scenario

logger = logging.getLogger(__name__)

LIVE_PREFIX = "live-"
# Panels follow a burst of steps once it pauses this long, or this often at the latest.
PANELS_QUIET = 0.03
PANELS_EVERY = 0.25


def group_name(recording_id: str) -> str:
    return f"recording.{recording_id}"


class LiveBroadcaster:
    """One per process: turns tracer events of live recordings into group messages."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start on the running loop (idempotent); called by the first consumer."""
        if self._task is not None and not self._task.done():
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._queue = asyncio.Queue()
        self._task = self._loop.create_task(self._run(), name="live-broadcaster")
        get_tracer().store.add_listener(self._on_event)

    def _on_event(self, recording: Recording, event: Event) -> None:
        # Called inside the traced request, possibly on a worker thread: only hand over.
        if recording.id.startswith(LIVE_PREFIX) and self._loop and self._queue:
            item = ("step", (recording, event["seq"]))
            if threading.get_ident() == self._loop_thread:
                self._queue.put_nowait(item)  # no wake-up of the loop needed
            else:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def send_after_pending_steps(self, recording_id: str, html: str) -> None:
        """Send ``html`` to the recording's watchers after every step queued before it."""
        if self._queue is not None:
            self._queue.put_nowait(("html", (recording_id, html)))

    async def _run(self) -> None:
        """Rows go out as soon as they are rendered. The panels (source, flow, variables,
        narration) are heavier for the server and the browser alike, so during a burst
        they follow once the burst pauses, or every PANELS_EVERY seconds at the latest."""
        assert self._queue is not None
        stale: dict[str, tuple[Recording, int]] = {}
        last_panels = 0.0
        while True:
            try:
                timeout = PANELS_QUIET if stale else None
                items = [await asyncio.wait_for(self._queue.get(), timeout)]
            except TimeoutError:
                items = []
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                await self._send_rows(items, stale)
                now = time.monotonic()
                if stale and (not items or now - last_panels >= PANELS_EVERY):
                    await self._send_panels(stale)
                    last_panels = now
            except Exception:
                logger.exception("could not broadcast live steps")

    async def _send_rows(
        self, items: list[tuple[str, Any]], stale: dict[str, tuple[Recording, int]]
    ) -> None:
        """Send the rows of queued steps, one frame per recording and burst, and queued
        HTML, in order; note which recordings' panels are now behind."""
        layer = get_channel_layer()
        for recording_id, payload in _group_steps(items):
            group = group_name(recording_id)
            if isinstance(payload, str):
                if recording_id in stale:
                    await self._send_panels({recording_id: stale.pop(recording_id)})
                await layer.group_send(group, {"type": "trace.step", "frames": [payload]})
                continue
            recording, seqs = payload
            document = recording.document()
            # A few rows render in well under a millisecond: on the loop, without the two
            # thread hand-offs (each can wait up to 5 ms for the GIL) of a worker thread.
            rows = render_live_rows(document, seqs)
            await layer.group_send(group, {"type": "trace.step", "frames": [rows]})
            stale[recording_id] = (recording, max(seqs))

    async def _send_panels(self, stale: dict[str, tuple[Recording, int]]) -> None:
        layer = get_channel_layer()
        for recording_id, (recording, seq) in list(stale.items()):
            del stale[recording_id]
            document = recording.document()
            scenario = get_scenario(document["scenario"]["slug"] if document["scenario"] else "")
            if scenario is None:
                continue
            panels = await asyncio.to_thread(render_live_panels, scenario, document, seq)
            await layer.group_send(
                group_name(recording_id), {"type": "trace.step", "frames": [panels]}
            )


def _group_steps(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Consecutive steps of one recording become one (recording, [seq, ...]) entry; queued
    HTML stays where it was."""
    grouped: list[tuple[str, Any]] = []
    for what, payload in items:
        if what == "step":
            recording, seq = payload
            last = grouped[-1] if grouped else None
            if last and not isinstance(last[1], str) and last[1][0] is recording:
                last[1][1].append(seq)
            else:
                grouped.append((recording.id, (recording, [seq])))
        else:
            grouped.append(payload)
    return grouped


broadcaster = LiveBroadcaster()
