"""Stream live runs to the pages watching them.

The tracer tells its listeners about every event, on whatever thread recorded it. For
recordings started from a page (ids beginning with ``live-``, and ``pg`` for runs of
edited code) the broadcaster notes that
the recording has grown; its one task reads the new steps from the recording, renders their
rows once and sends them to the recording's group, in step order whatever thread recorded
them; each watching consumer forwards them to its browser unchanged. Steps that arrive
faster than they can be rendered are sent together.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from typing import Any

from channels.layers import get_channel_layer

from tracer.django_integration import get_tracer
from tracer.events import Event
from tracer.recorder import Recording, RecordingStore
from visualizer.scenarios.catalog import get_scenario
from visualizer.traces.pages import render_live_panels, render_live_rows
from visualizer.traces.run_state import EDITED_PREFIX

logger = logging.getLogger(__name__)

LIVE_PREFIX = "live-"
STREAMED = (LIVE_PREFIX, EDITED_PREFIX)
# Panels follow a burst of steps once it pauses this long, or once its first row has
# waited this long for them in a burst that goes on. A browser takes tens of ms to swap
# them in, and rows that come meanwhile wait: a pause of 0.1 s is one between a run's
# phases (its views' awaits, say), not inside a burst.
PANELS_QUIET = 0.1
PANELS_EVERY = 0.25


def group_name(recording_id: str) -> str:
    return f"recording.{recording_id}"


class LiveBroadcaster:
    """One per process: turns tracer events of live recordings into group messages."""

    def __init__(self, store: RecordingStore | None = None) -> None:
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        # The last step of each live recording whose row has been sent. A burst's rows are
        # read from the recording itself, from the one after it: so they go out in step
        # order, each once, in whatever order the threads that recorded them were heard.
        self._sent: weakref.WeakKeyDictionary[Recording, int] = weakref.WeakKeyDictionary()

    def start(self) -> None:
        """Start on the running loop (idempotent); called by each consumer that connects."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self.stop()  # started on a loop that has since stopped (one per test, for instance)
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._queue = asyncio.Queue()
        self._task = loop.create_task(self._run(), name="live-broadcaster")
        self._recordings().add_listener(self._on_event)

    def stop(self) -> None:
        """Stop listening and sending (idempotent); the server never needs to, tests do."""
        if self._task is None:
            return
        self._recordings().remove_listener(self._on_event)
        if self._loop is not None and not self._loop.is_closed():
            self._task.cancel()
        self._task = None

    def _recordings(self) -> RecordingStore:
        # The tracer's store by default, looked up late: Django's settings configure it.
        return self._store if self._store is not None else get_tracer().store

    def _on_event(self, recording: Recording, event: Event) -> None:
        # Called inside the traced request, possibly on a worker thread: only say that the
        # recording has grown (the task reads what is new from the recording).
        if recording.id.startswith(STREAMED) and self._loop and self._queue:
            item = ("step", recording)
            if threading.get_ident() == self._loop_thread:
                self._queue.put_nowait(item)  # no wake-up of the loop needed
            else:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def send_after_pending_steps(self, recording_id: str, html: str) -> None:
        """Send ``html`` to the recording's watchers after the rows of every step it holds."""
        if self._queue is not None:
            self._queue.put_nowait(("html", (recording_id, html)))

    async def _run(self) -> None:
        """Rows go out as soon as they are rendered. The panels (source, flow, variables,
        narration) are heavier for the server and the browser alike, so during a burst
        they follow once the burst pauses, or every PANELS_EVERY seconds at the latest."""
        assert self._queue is not None
        stale: dict[str, tuple[Recording, int]] = {}
        # When the panels sent last fell behind: counted from then, not from when they
        # were sent, so that a burst's first rows are never followed at once by panels
        # that would hold up the rest of the burst.
        stale_since = 0.0
        while True:
            try:
                timeout = PANELS_QUIET if stale else None
                items = [await asyncio.wait_for(self._queue.get(), timeout)]
            except TimeoutError:
                items = []
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                was_stale = bool(stale)
                await self._send_items(items, stale)
                now = time.monotonic()
                if stale and not was_stale:
                    stale_since = now
                if stale and (not items or now - stale_since >= PANELS_EVERY):
                    await self._send_panels(stale)
            except Exception:
                logger.exception("could not broadcast live steps")

    async def _send_items(
        self, items: list[tuple[str, Any]], stale: dict[str, tuple[Recording, int]]
    ) -> None:
        """Send the new rows of the recordings that have grown, one frame per recording and
        burst, and queued HTML after its recording's rows; note whose panels are behind."""
        grown: dict[Recording, None] = {}  # a set that keeps the order heard
        for what, payload in items:
            if what == "step":
                grown[payload] = None
                continue
            recording_id, html = payload
            recording = self._recordings().get(recording_id)
            if recording is not None:
                grown.pop(recording, None)
                await self._send_rows(recording, stale)
            if recording_id in stale:
                await self._send_panels({recording_id: stale.pop(recording_id)})
            await get_channel_layer().group_send(
                group_name(recording_id), {"type": "trace.step", "frames": [html]}
            )
        for recording in grown:
            await self._send_rows(recording, stale)

    async def _send_rows(
        self, recording: Recording, stale: dict[str, tuple[Recording, int]]
    ) -> None:
        """Send the rows of the recording's steps after the last one sent, in step order."""
        document = recording.document()
        first, last = self._sent.get(recording, 0) + 1, len(document["events"])
        if last < first:
            return  # told of steps already sent with an earlier burst
        # A few rows render in well under a millisecond: on the loop, without the two
        # thread hand-offs (each can wait up to 5 ms for the GIL) of a worker thread.
        rows = render_live_rows(document, list(range(first, last + 1)))
        await get_channel_layer().group_send(
            group_name(recording.id), {"type": "trace.step", "frames": [rows]}
        )
        self._sent[recording] = last
        stale[recording.id] = (recording, last)

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


broadcaster = LiveBroadcaster()
