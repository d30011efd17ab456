"""Stream live runs to the pages watching them.

The tracer tells its listeners about every event, on whatever thread recorded it. For
recordings started from a page (ids beginning with ``live-``) the broadcaster queues the
event, renders the step's HTML once, off the event loop, and sends it to the recording's
group; each watching consumer forwards it to its browser unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.layers import get_channel_layer

from tracer.django_integration import get_tracer
from tracer.recorder import Recording
from visualizer.pages import render_live_step
from visualizer.scenarios import get_scenario

logger = logging.getLogger(__name__)

LIVE_PREFIX = "live-"


def group_name(recording_id: str) -> str:
    return f"recording.{recording_id}"


class LiveBroadcaster:
    """One per process: turns tracer events of live recordings into group messages."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start on the running loop (idempotent); called by the first consumer."""
        if self._task is not None and not self._task.done():
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = self._loop.create_task(self._run(), name="live-broadcaster")
        get_tracer().store.add_listener(self._on_event)

    def _on_event(self, recording: Recording, event: dict[str, Any]) -> None:
        # Called inside the traced request, possibly on a worker thread: only hand over.
        if recording.id.startswith(LIVE_PREFIX) and self._loop and self._queue:
            self._loop.call_soon_threadsafe(
                self._queue.put_nowait, ("step", (recording, event["seq"]))
            )

    def send_after_pending_steps(self, recording_id: str, html: str) -> None:
        """Send ``html`` to the recording's watchers after every step queued before it."""
        if self._queue is not None:
            self._queue.put_nowait(("html", (recording_id, html)))

    async def _run(self) -> None:
        assert self._queue is not None
        layer = get_channel_layer()
        while True:
            what, payload = await self._queue.get()
            try:
                if what == "step":
                    recording, seq = payload
                    frames = await asyncio.to_thread(_render_step, recording, seq)
                    recording_id = recording.id
                else:
                    recording_id, html = payload
                    frames = [html]
                if frames and layer is not None:
                    await layer.group_send(
                        group_name(recording_id), {"type": "trace.step", "frames": frames}
                    )
            except Exception:
                logger.exception("could not broadcast a live step")


def _render_step(recording: Recording, seq: int) -> list[str]:
    document = recording.document()
    scenario = get_scenario((document["scenario"] or {}).get("slug", ""))
    if scenario is None:
        return []
    return render_live_step(scenario, document, seq)


broadcaster = LiveBroadcaster()
