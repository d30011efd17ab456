"""tracer/loop_clock.py on a real event loop: when a watched task became ready, and how long
it then waited for the loop while another callback held it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from tracer.instrumentation import Instrumentation
from tracer.loop_clock import TaskClock

HOLD_S = 0.06


@pytest.fixture
def instrumentation() -> Iterator[Instrumentation]:
    instrumentation = Instrumentation()
    instrumentation.enable()
    try:
        yield instrumentation
    finally:
        instrumentation.disable()


def watched(
    instrumentation: Instrumentation,
    body: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]],
) -> TaskClock:
    """Run ``body`` in a task the loop clock watches; its clock once the task is done."""
    clocks = []

    async def task() -> None:
        clock = instrumentation.loop_clock.watch(asyncio.current_task(), time.monotonic_ns())  # type: ignore[arg-type]
        clocks.append(clock)
        await body(asyncio.get_running_loop())
        clock.until_ns = time.monotonic_ns()

    async def main() -> None:
        await asyncio.create_task(task())

    asyncio.run(main())
    return clocks[0]


def hold_the_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Have the loop run a callback that keeps it for HOLD_S."""
    loop.call_soon(time.sleep, HOLD_S)


def the_longest_wait(clock: TaskClock) -> int:
    return max(started - ready for ready, started, _ in clock.steps)


def test_it_counts_a_thread_answer_as_ready_while_the_loop_was_held(instrumentation):
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        answered = threading.Event()

        def work() -> None:
            answered.set()

        future = loop.run_in_executor(None, work)
        hold_the_loop(loop)
        await asyncio.shield(future)  # a chain of callbacks between the thread and the task

    clock = watched(instrumentation, body)

    # The thread answered at once; the task could go on only once the loop was free.
    assert the_longest_wait(clock) >= HOLD_S * 1e9 * 0.9
    assert clock.wait_ns >= the_longest_wait(clock)


def test_it_counts_a_timer_as_ready_from_its_due_time(instrumentation):
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        hold_the_loop(loop)
        await asyncio.sleep(0.001)  # due long before the loop is free again

    clock = watched(instrumentation, body)

    assert the_longest_wait(clock) >= (HOLD_S - 0.001) * 1e9 * 0.9


def test_it_counts_no_wait_when_the_loop_was_free(instrumentation):
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        await asyncio.sleep(HOLD_S)

    clock = watched(instrumentation, body)

    # The task slept: not ready, so not waiting, while the timer ran down.
    assert the_longest_wait(clock) < HOLD_S * 1e9 / 2
    window = clock.until_ns - clock.since_ns  # type: ignore[operator]
    assert clock.run_ns + clock.wait_ns <= window


def test_its_steps_are_in_order_and_add_up_to_its_totals(instrumentation):
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        for _ in range(5):
            hold_the_loop(loop)
            await asyncio.sleep(0)

    clock = watched(instrumentation, body)

    assert len(clock.steps) >= 6
    previous_end = clock.since_ns
    for ready, started, ended in clock.steps:
        assert previous_end <= ready <= started <= ended
        previous_end = ended
    assert clock.run_ns == sum(ended - started for _, started, ended in clock.steps)
    assert clock.wait_ns == sum(started - ready for ready, started, _ in clock.steps)
    assert clock.wait_ns >= 5 * HOLD_S * 1e9 * 0.9


def test_it_stamps_nothing_once_no_task_is_watched(instrumentation):
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        instrumentation.loop_clock.watch(task, time.monotonic_ns())
        instrumentation.loop_clock.unwatch(task)
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(main())

    assert instrumentation.loop_clock.stamps == {}


def test_disable_puts_the_loop_back_as_it_was():
    import asyncio.base_events

    original = asyncio.base_events.BaseEventLoop._call_soon  # type: ignore[attr-defined]
    instrumentation = Instrumentation()
    instrumentation.enable()
    assert asyncio.base_events.BaseEventLoop._call_soon is not original  # type: ignore[attr-defined]
    instrumentation.disable()
    assert asyncio.base_events.BaseEventLoop._call_soon is original  # type: ignore[attr-defined]
