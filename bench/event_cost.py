"""Measure what recording one event costs on the tracer's hot path: RequestTrace.origin()
(task, thread, the view's locals), the kind's constructor in tracer/events.py and
RequestTrace.emit(), as the instrumentation calls them, inside a running event loop.

Each round records the events of a typical async view's request (view.started,
await.suspended, await.resumed, view.returned, response.started) many times over, from a
frame holding three locals, and prints nanoseconds an event; the median round is judged
against a target of at most 8 microseconds an event (4.2-6.8 here on 2 busy cores, most
of it the safe reprs of the locals): a regression such as a second copy of the locals shows.

Run it from the repository root:

    uv run python bench/event_cost.py [--rounds 5] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import add_rounds_argument, check_rounds, machine, median_against_target
from tracer import events
from tracer.recorder import RecordingStore

TARGET_NS = 8000
EVENTS_A_REQUEST = 5


def view_frame() -> FrameType:
    """A finished frame with three locals, like a view paused at an await."""
    delay_ms, label, data = 100, "reading", {"reading": 3, "waited_ms": 100}
    assert delay_ms and label and data
    return sys._getframe()


async def one_round(requests: int) -> float:
    """Nanoseconds an event, over ``requests`` requests' worth of events."""
    recording = RecordingStore(max_events=requests * EVENTS_A_REQUEST).get_or_create("bench")
    trace = recording.new_request("GET", "/run/async-io/", time.monotonic_ns())
    frame = view_frame()
    awaited = (frame.f_code.co_filename, frame.f_code.co_name, frame.f_lineno)
    started = time.perf_counter_ns()
    for _ in range(requests):
        now = time.monotonic_ns()
        trace.emit(events.view_started(trace.origin(frame), now))
        trace.emit(events.await_suspended(trace.origin(frame), now, awaiting="fetch_data()"))
        trace.emit(
            events.await_resumed(
                trace.origin(frame, awaited),
                now,
                awaiting="fetch_data()",
                duration_ns=5,
                off_loop_ns=4,
                suspensions=1,
            )
        )
        trace.emit(events.view_returned(trace.origin(frame), now, returned="<JsonResponse>"))
        trace.emit(events.response_started(trace.origin(), now, status=200))
    elapsed = time.perf_counter_ns() - started
    assert len(recording.events) == requests * EVENTS_A_REQUEST
    return elapsed / (requests * EVENTS_A_REQUEST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser, default=5)
    parser.add_argument("--requests", type=int, default=20_000)
    arguments = parser.parse_args()
    check_rounds(parser, arguments.rounds)
    print(machine())
    figures = [asyncio.run(one_round(arguments.requests)) for _ in range(arguments.rounds)]
    median_against_target("ns to record one event", figures, TARGET_NS, " ns")


if __name__ == "__main__":
    main()
