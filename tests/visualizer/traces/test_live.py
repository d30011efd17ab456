"""The live broadcaster sends a run's rows in step order, whichever threads recorded them."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import pytest
from channels.layers import get_channel_layer

from tests.fixtures import VERSION_1_EXAMPLES
from tracer.recorder import Recording, RecordingStore
from visualizer.traces.live import LiveBroadcaster, group_name

pytestmark = pytest.mark.asyncio

EXAMPLE = VERSION_1_EXAMPLES / "sync-io-4-requests.json"
DONE = '<p id="run-status">done</p>'


def example_events() -> list[dict[str, Any]]:
    """A real run's events, to be recorded again (each append numbers its event anew)."""
    document = json.loads(EXAMPLE.read_bytes())
    return [{k: v for k, v in e.items() if k != "seq"} for e in document["events"]]


def record_from_threads(recording: Recording, threads: int, each: int) -> list[threading.Thread]:
    events = example_events()
    start = threading.Barrier(threads)

    def record() -> None:
        start.wait()
        for i in range(each):
            recording.append(dict(events[i % len(events)]))

    workers = [threading.Thread(target=record) for _ in range(threads)]
    for worker in workers:
        worker.start()
    return workers


async def sent_step_numbers(layer: Any, channel: str) -> list[int]:
    """The step numbers of the rows sent to ``channel``, in the order sent, up to DONE."""
    numbers: list[int] = []
    while True:
        # Bounded so a broadcaster that never sends DONE fails the test instead of hanging.
        message = await asyncio.wait_for(layer.receive(channel), 30)
        for frame in message["frames"]:
            if frame == DONE:
                return numbers
            numbers += [int(n) for n in re.findall(r'<tr id="step-(\d+)"', frame)]


async def test_it_sends_rows_in_step_order_whichever_threads_recorded_them():
    """Steps of one run are recorded on the mirror's reader thread, and may be on worker
    threads and on the event loop's own thread (a process that records its own runs)."""
    store = RecordingStore()
    recording = store.get_or_create("live-order")
    recording.mirror_requests(json.loads(EXAMPLE.read_bytes())["requests"], [], 0)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(recording.id), channel)
    broadcaster = LiveBroadcaster(store)
    broadcaster.start()
    try:
        received = asyncio.create_task(sent_step_numbers(layer, channel))
        workers = record_from_threads(recording, threads=4, each=300)
        events = example_events()
        for i in range(300):
            # The loop's own steps, between the ones the threads hand over.
            recording.append(dict(events[i % len(events)]))
            await asyncio.sleep(0)
        for worker in workers:
            await asyncio.to_thread(worker.join)
        broadcaster.send_after_pending_steps(recording.id, DONE)
        numbers = await received
    finally:
        broadcaster.stop()
        await layer.group_discard(group_name(recording.id), channel)

    assert numbers == list(range(1, 5 * 300 + 1))
