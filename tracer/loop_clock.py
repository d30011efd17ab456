"""When each request's task ran on the event loop, and how long it was ready but waited.

A task suspended at an await becomes *ready* when what it awaited is done: the loop then
schedules the step that resumes it (``loop.call_soon``), and runs it when its turn comes.
While the tracer is on, ``BaseEventLoop._call_soon`` (behind ``call_soon`` and
``call_soon_threadsafe``) notes when each step of a watched task was scheduled; the patched
``Handle._run`` (tracer/instrumentation.py) tells ``ran()`` when it ran. A step scheduled
from a callback that was itself late (a timer's callback, the one a thread's answer
arrived in, an I/O callback) counts from when that callback was due: the timer's time, the
moment the other thread answered, the start of the I/O callback (the loop noticed the I/O
only then). Only while some task is watched does this cost more than a check.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import threading
import time
from contextvars import ContextVar
from typing import Any

# Steps listed per request (its totals count every step).
MAX_STEPS = 1000
# A stamp never collected (its handle was cancelled, its loop closed) is dropped past this.
MAX_STAMPS = 20_000


# Set in a watched task's context: callbacks scheduled in other contexts are not stamped.
_watched: ContextVar[TaskClock | None] = ContextVar("loop_clock_watched", default=None)


class TaskClock:
    """One request's task between ``since_ns`` (the request arrived) and ``until_ns`` (its
    response was handed over): time running on the loop, time ready but waiting for it,
    and each step as ``[ready_ns, started_ns, ended_ns]``, clipped to that window."""

    __slots__ = ("_last_end_ns", "run_ns", "since_ns", "steps", "until_ns", "wait_ns")

    def __init__(self, since_ns: int) -> None:
        self.since_ns = since_ns
        self.until_ns: int | None = None
        self.run_ns = 0
        self.wait_ns = 0
        self.steps: list[list[int]] = []
        self._last_end_ns = since_ns

    def add(self, ready_ns: int, started_ns: int, ended_ns: int) -> None:
        # Clipped to the window; not waiting while its previous step still ran (a second
        # step can be scheduled meanwhile). Comparisons, not min()/max(): this runs for
        # every step.
        until = self.until_ns
        if until is None or until > ended_ns:
            until = ended_ns
        start = started_ns if started_ns > self.since_ns else self.since_ns
        if start > until:
            start = until
        ready = ready_ns if ready_ns > self._last_end_ns else self._last_end_ns
        if ready > start:
            ready = start
        if until == ready:
            return
        self._last_end_ns = until
        self.run_ns += until - start
        self.wait_ns += start - ready
        if len(self.steps) < MAX_STEPS:
            self.steps.append([ready, start, until])


# A scheduled callback: its handle (kept so that its id is not reused while the stamp
# lives), the clock of the watched task it is a step of (None: a link of a chain), when it
# was ready.
Stamp = tuple[asyncio.Handle, TaskClock | None, int]


class LoopClock:
    """Stamps the steps of watched tasks. ``slots.slot``, per thread, is what the patched
    Handle._run notes of the callback running: ``handle`` and ``started_ns`` (0: none)."""

    def __init__(self, slots: threading.local) -> None:
        self.slots = slots
        self.tasks: dict[asyncio.Task[Any], TaskClock] = {}
        # id(handle) -> its stamp, until the callback runs.
        self.stamps: dict[int, Stamp] = {}
        self._original: Any = None

    def enable(self) -> None:
        if self._original is not None:
            return
        loop_class = asyncio.base_events.BaseEventLoop
        original = self._original = loop_class._call_soon  # type: ignore[attr-defined]
        tasks, stamps, slots, timer_due = self.tasks, self.stamps, self.slots, _timer_due
        task_type, timer_type = asyncio.Task, asyncio.TimerHandle
        monotonic_ns, watched = time.monotonic_ns, _watched

        def _call_soon(loop: Any, callback: Any, args: Any, context: Any) -> asyncio.Handle:
            handle: asyncio.Handle = original(loop, callback, args, context)
            if not tasks:
                return handle
            try:
                slot = getattr(slots, "slot", None)
                parent = slot.handle if slot is not None and slot.started_ns else None
                if parent is not None and handle._context.get(watched) is None:  # type: ignore[attr-defined]
                    return handle  # not a traced request's callback
                owner = getattr(callback, "__self__", None)
                clock = None
                if isinstance(owner, task_type):
                    clock = tasks.get(owner)
                    if clock is None:
                        # Another task's step: no step it schedules asks when it was due.
                        return handle
                if len(stamps) > MAX_STAMPS:
                    stamps.clear()
                if parent is None or isinstance(
                    getattr(parent._callback, "__self__", None), task_type
                ):
                    # From another thread (call_soon_threadsafe: a thread's answer, made in
                    # that thread's own context), between callbacks, or by a task's step:
                    # ready now.
                    ready = monotonic_ns()
                else:
                    # A link of a chain of callbacks (a future's, a shield's): whatever made
                    # the running callback due made this one ready too.
                    entry = stamps.get(id(parent))
                    if entry is not None:
                        ready = entry[2]
                    elif isinstance(parent, timer_type):
                        ready = timer_due(parent, slot.started_ns)  # type: ignore[union-attr]
                    else:
                        # An I/O callback (its handle serves every read): the loop's
                        # selector reported the I/O just before it began.
                        ready = slot.started_ns  # type: ignore[union-attr]
                stamps[id(handle)] = (handle, clock, ready)
            except Exception:  # never let the tracer break the loop
                pass
            return handle

        loop_class._call_soon = _call_soon  # type: ignore[attr-defined]

    def disable(self) -> None:
        if self._original is not None:
            asyncio.base_events.BaseEventLoop._call_soon = self._original  # type: ignore[attr-defined]
            self._original = None
        self.tasks.clear()
        self.stamps.clear()

    def watch(self, task: asyncio.Task[Any], since_ns: int) -> TaskClock:
        """Time ``task`` from ``since_ns``; called from the task's own step, which is timed
        from then."""
        clock = self.tasks[task] = TaskClock(since_ns)
        _watched.set(clock)  # in the task's context, and the callbacks made in it
        slot = getattr(self.slots, "slot", None)
        if slot is not None and slot.started_ns and slot.handle is not None:
            self.stamps[id(slot.handle)] = (slot.handle, clock, since_ns)
        return clock

    def unwatch(self, task: asyncio.Task[Any]) -> None:
        self.tasks.pop(task, None)
        if not self.tasks:
            self.stamps.clear()

    @staticmethod
    def ran(stamp: Stamp, started_ns: int, ended_ns: int) -> None:
        """A stamped loop callback ran (the patched Handle._run pops its stamp)."""
        clock = stamp[1]
        if clock is not None:
            try:
                clock.add(stamp[2], started_ns, ended_ns)
            except Exception:  # never let the tracer break the loop
                return


def _timer_due(timer: asyncio.TimerHandle, started_ns: int) -> int:
    """When a timer's callback was due (it began at ``started_ns``)."""
    if type(timer._loop).time is not asyncio.base_events.BaseEventLoop.time:  # type: ignore[attr-defined]
        return started_ns  # a loop with a clock of its own
    # That loop's clock is time.monotonic(), the tracer's. (A timer may run a clock tick
    # early.)
    due = int(timer.when() * 1e9)
    return due if due < started_ns else started_ns
