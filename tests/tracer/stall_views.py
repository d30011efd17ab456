"""Async views that hold the event loop in ways no single call of theirs shows, and views
whose awaits end with an exception. The tests find lines by their text, so keep each
marked line unique."""

from __future__ import annotations

import asyncio
import time


async def busy_view(ms: int) -> str:
    deadline = time.monotonic() + ms / 1000
    while time.monotonic() < deadline:  # spins: many short calls, no slow one
        pass
    return "done"


async def sleeping_view(ms: int) -> int:
    time.sleep(ms / 1000)  # the view's own blocking call
    return ms


async def sleepy_helper(ms: int) -> int:
    time.sleep(ms / 1000)  # blocks before the helper's first suspension
    await asyncio.sleep(0)
    return ms


async def helper_view(ms: int) -> int:
    slept = await sleepy_helper(ms)
    return slept


def compute(n: int) -> int:
    total = 0
    for number in range(n):
        total += number % 7
    return total


async def offload_view(n: int) -> int:
    result = await asyncio.to_thread(compute, n)
    return result


async def gil_hungry_view(times: int) -> int:
    # Each time.sleep(0) gives the GIL away and must get it back: cheap when no other
    # thread computes, slow when one does.
    for _ in range(times):
        time.sleep(0)
    return times


async def timeout_view() -> str:
    try:
        await asyncio.wait_for(asyncio.sleep(1), 0.05)
    except TimeoutError:
        return "timed out"
    return "in time"


def fail() -> None:
    raise ValueError("the worker failed")


async def failing_offload_view() -> str:
    try:
        await asyncio.to_thread(fail)
    except ValueError:
        return "failed"
    return "worked"


async def unhandled_failure_view() -> None:
    await asyncio.to_thread(fail)


async def later_failure() -> None:
    await asyncio.sleep(0.01)
    raise KeyError("later")


async def resumed_then_raised_view() -> str:
    try:
        await later_failure()
    except KeyError:
        return "caught"
    return "no error"


async def gather_view() -> list[None]:
    done = await asyncio.gather(asyncio.sleep(0.01), asyncio.sleep(0.01))
    return done


VIEWS = (
    gather_view,
    busy_view,
    sleeping_view,
    helper_view,
    offload_view,
    gil_hungry_view,
    timeout_view,
    failing_offload_view,
    unhandled_failure_view,
    resumed_then_raised_view,
)
