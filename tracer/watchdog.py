"""The watchdog: a thread that watches the event loops and the CPU clocks of the process.

While at least one traced request is in flight it wakes every 10 ms (5 ms while a loop
callback runs long) and

* notes the CPU time of every thread of the process (``time.pthread_getcpuclockid`` and
  ``time.clock_gettime_ns``), so that a slow span of one thread can be compared with what
  the other threads computed meanwhile (``cause``: computing, waiting, or waiting for the
  GIL while another thread computed);
* notes, for each thread that was off the CPU, whether it was waiting on a futex (for the
  GIL or a lock) or in another system call (sleep, network, disk): a thread blocked in a
  read while others compute is not waiting for the GIL;
* samples the stack of an event-loop thread whose current callback has run for longer than
  half the stall threshold (``sys._current_frames()``), so that a ``loop.blocked`` event can
  name the code that held the loop, even code that made no call the tracer saw.

With no traced request in flight it blocks on an event and costs nothing. It never touches
the traced code: it only reads frames, clocks and a few attributes the instrumentation sets.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import ctypes
import dataclasses
import functools
import logging
import os
import platform
import sys
import sysconfig
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any

from tracer import events, procfs

logger = logging.getLogger(__name__)

THREAD_NAME = "tracer-watchdog"
# At most this many frames of a stack are kept, the innermost ones (docs/trace-format.md).
MAX_STACK = 64
# Frames walked at most, from the innermost, to find the traced view in a stack.
MAX_WALK = 256
# Every thread's CPU clock is read at least every this many ticks while requests are in
# flight (at every tick while a loop callback runs long).
FULL_EVERY = 2
# Stack samples kept for one loop callback.
MAX_SAMPLES = 48
# CPU samples kept: the recent ones at every tick, older ones coarser.
FINE_HISTORY = 1024
COARSE_EVERY = 50
COARSE_HISTORY = 240

_TRACER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# The futex system call's number (the GIL and locks wait on futexes), by machine.
FUTEX_SYSCALLS = {"x86_64": b"202", "aarch64": b"98"}
# Off-CPU samples kept per thread.
SYSCALL_HISTORY = 512


class SyscallReader:
    """Which system call a thread is in, from ``/proc/self/task/<tid>/syscall``: read
    through a libc call that keeps the GIL (``ctypes.PyDLL``), as the clocks are, so that
    reading many threads never waits for the GIL to come back. Not available (``None``
    answers) off Linux or on a machine whose futex number is not known."""

    def __init__(self) -> None:
        self.futex = FUTEX_SYSCALLS.get(platform.machine())
        self._files: dict[int, int | None] = {}
        self._buffer = ctypes.create_string_buffer(32)
        if not procfs.available():
            self.futex = None

    def in_futex(self, native_id: int | None) -> bool | None:
        """True if the thread waits on a futex, False if it is in another system call,
        None if running or unknown."""
        if self.futex is None or native_id is None:
            return None
        handle = self._files.get(native_id, -1)
        if handle == -1:
            try:
                handle = os.open(f"/proc/self/task/{native_id}/syscall", os.O_RDONLY)
            except OSError:
                handle = None
            self._files[native_id] = handle
        if handle is None:
            return None
        answer = procfs.read_at_start(handle, self._buffer)
        if answer is None:
            return None
        number = answer.split(b" ", 1)[0].strip()
        if not number.isdigit():
            return None  # "running"
        return number == self.futex

    def forget(self, alive: Collection[int | None]) -> None:
        for native_id in [n for n in self._files if n not in alive]:
            handle = self._files.pop(native_id)
            if handle is not None:
                with contextlib.suppress(OSError):
                    os.close(handle)

    def close(self) -> None:
        self.forget(())


def gil_enabled() -> bool:
    """False on a free-threaded build running without the GIL."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


class LoopSlot:
    """What one event-loop thread is running now; written by the patched Handle._run on
    that thread, read by the watchdog."""

    __slots__ = ("cpu_ns", "cpu_since_ns", "generation", "handle", "longest", "samples",
                 "started_ns")  # fmt: skip

    def __init__(self) -> None:
        self.generation = 0
        self.started_ns = 0
        # The thread's CPU clock when the callback began (-1: not read, no request was in
        # flight), and since when it counts.
        self.cpu_ns = -1
        self.cpu_since_ns = 0
        self.handle: asyncio.Handle | None = None
        self.longest: Any = None
        # [(generation, StackSample), ...] of the callback the samples were taken in.
        self.samples: list[tuple[int, StackSample]] | None = None


@dataclass
class StackSample:
    """One look at a loop thread's stack during a long callback."""

    t_ns: int
    holder: str | None
    culprit: str | None
    location: tuple[str, str, int | None] | None
    stack: list[events.StackFrame] = field(default_factory=list)
    # A call the traced frame was in (its name and start), seen from the instrumentation:
    # a function without Python frames of its own, like time.sleep. It held the loop if
    # it went on for long (see pick()), not if it was one of many short calls.
    call: tuple[str, int] | None = None


@dataclass
class Cause:
    """Why a span of one thread was slow (the ``cause`` fields of an event)."""

    cause: events.Cause
    gil_thread: str | None = None
    gil_ident: int | None = None


# One reading of a thread: (CPU ns, ns it was ready to run but waited for a core).
Reading = tuple[int, int]


def classify(
    duration_ns: int,
    cpu_ns: int,
    others: dict[int, Reading] | None,
    window_ns: int,
    *,
    gil: bool,
    ready_ns: int = 0,
    in_io: bool = False,
) -> tuple[events.Cause, int | None]:
    """The cause of a slow span and the other thread that computed most meanwhile.

    ``cpu_ns`` is what the thread computed, ``ready_ns`` how long it was ready to run but
    waited for a core (a busy machine), ``others`` what each other thread of the process
    computed and how long it was ready to run, over ``window_ns``.

    ``computing`` when the thread's own CPU was at least half the span. Otherwise ``gil``
    when, with the GIL on, the thread was off the CPU and not waiting for a core for at
    least half the span (a thread waiting for a core is not waiting for the GIL), not seen
    in a system call other than a futex wait (``in_io``: blocked in I/O or a sleep), and
    the other threads were busy for half the window *and* computed for a tenth of it: a
    thread holding the GIL can be kept off a core by a busy machine, but threads that only
    waited for a core, computing next to nothing, held no GIL the trace can show.
    Otherwise ``computing`` again if the CPU and the wait for a core make half the span
    and the CPU a tenth of it (the machine, not the process, was busy: a thread waiting
    for the GIL or a lock also waits for a core each time it wakes, but computes next to
    nothing); ``preempted`` if, computing next to nothing, it waited for a core half the
    span or more (the machine was busy with other work: no code of the process held it);
    and ``waiting`` (sleep, network, disk, a lock) if not.
    """
    if cpu_ns * 2 >= duration_ns:
        return events.CAUSE_COMPUTING, None
    off_cpu = duration_ns - cpu_ns - ready_ns
    if gil and not in_io and others and window_ns > 0 and off_cpu * 2 >= duration_ns:
        computed = sum(cpu for cpu, _ in others.values())
        busy = computed + sum(ready for _, ready in others.values())
        if busy * 2 >= window_ns and computed * 10 >= window_ns:
            return events.CAUSE_GIL, max(others, key=lambda ident: others[ident][0])
    if (cpu_ns + ready_ns) * 2 >= duration_ns and cpu_ns * 10 >= duration_ns:
        return events.CAUSE_COMPUTING, None
    if ready_ns * 2 >= duration_ns:
        return events.CAUSE_PREEMPTED, None
    return events.CAUSE_WAITING, None


class ThreadClocks:
    """CPU time of the process's threads, by thread ident.

    The CPU time comes from each thread's CPU clock (``time.pthread_getcpuclockid``), read
    without giving the GIL away, so one reading of every thread is one moment. Where Linux
    gives it (``/proc/self/task/<tid>/schedstat``), a reading also has the time the
    thread was ready to run but waited for a core: on a busy machine a computing thread
    can get much less than a whole core. That file is read for every thread at every
    reading, with the GIL kept (``procfs``): a wait kept from an older reading would put
    the run-queue time of before a span into the span.
    """

    def __init__(self) -> None:
        # Keyed by (ident, native_id): an ident can be reused by a later thread.
        self._clock_ids: dict[tuple[int, int | None], int] = {}
        self._stat_files: dict[tuple[int, int | None], int | None] = {}
        self._lock = threading.Lock()

    def read(self, exclude: Collection[int] = ()) -> tuple[dict[int, Reading], dict[int, str]]:
        """A reading of every live thread but those excluded, and their names."""
        cpu: dict[int, int] = {}
        names: dict[int, str] = {}
        keys: dict[int, tuple[int, int | None]] = {}
        natives = procfs.native_ids()
        for thread in threading.enumerate():
            ident = thread.ident
            if ident is None or ident in exclude:
                continue
            key = keys[ident] = (ident, natives.get(ident))
            try:
                clock = self._clock_ids.get(key)
                if clock is None:
                    clock = self._clock_ids[key] = time.pthread_getcpuclockid(ident)
                cpu[ident] = time.clock_gettime_ns(clock)
                names[ident] = thread.name
            except (OSError, OverflowError, ValueError):
                self._clock_ids.pop(key, None)
        buffer = ctypes.create_string_buffer(96)
        readings = {
            ident: (used, self._read_wait(keys[ident], buffer)) for ident, used in cpu.items()
        }
        self._tidy(set(keys.values()))
        return readings, names

    def close(self) -> None:
        with self._lock:
            for handle in self._stat_files.values():
                if handle is not None:
                    with contextlib.suppress(OSError):
                        os.close(handle)
            self._stat_files.clear()
            self._clock_ids.clear()

    def _read_wait(self, key: tuple[int, int | None], buffer: Any) -> int:
        """The thread's time ready to run but waiting for a core so far (0 if unknown)."""
        with self._lock:
            if key not in self._stat_files:
                self._stat_files[key] = _open_schedstat(key[1])
            handle = self._stat_files[key]
        if handle is None:
            return 0
        text = procfs.read_at_start(handle, buffer)
        try:
            return int(text.split()[1]) if text else 0
        except (ValueError, IndexError):
            return 0

    def _tidy(self, alive: set[tuple[int, int | None]]) -> None:
        if len(self._clock_ids) + len(self._stat_files) <= 2 * len(alive) + 32:
            return
        with self._lock:
            for key in [key for key in self._stat_files if key not in alive]:
                handle = self._stat_files.pop(key)
                if handle is not None:
                    with contextlib.suppress(OSError):
                        os.close(handle)
            for key in [key for key in self._clock_ids if key not in alive]:
                del self._clock_ids[key]


def _open_schedstat(native_id: int | None) -> int | None:
    if native_id is None:
        return None
    try:
        return os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)
    except OSError:
        return None


# A tick's readings of every thread, and when it was taken.
Sample = tuple[int, dict[int, Reading]]


class Watchdog:
    """The watchdog thread; ``start()`` and ``stop()`` are idempotent."""

    def __init__(
        self,
        loop_threads: Callable[[], Collection[int]],
        instrumented: Callable[[], Collection[CodeType]],
        call_in_progress: Callable[[int, FrameType], tuple[str, int, int] | None],
        work_on_stack: Callable[[FrameType | None], object] = lambda frame: None,
        interval_ns: int = 10_000_000,
        sample_after_ns: int = 10_000_000,
    ) -> None:
        self.interval_ns = interval_ns
        self.sample_after_ns = sample_after_ns
        self.errors = 0
        self.ticks = 0
        self.readings = 0
        self._loop_threads = loop_threads
        self._instrumented = instrumented
        self._call_in_progress = call_in_progress
        self._work_on_stack = work_on_stack
        # What each thread seen computing works for: [last seen computing, when that was
        # looked up, the request].
        self._work: dict[int, list[Any]] = {}
        self._slots: dict[int, LoopSlot] = {}
        self.local = threading.local()
        self._clocks = ThreadClocks()
        self._syscalls = SyscallReader()
        # For threads seen off the CPU: (when, whether waiting on a futex), by thread ident.
        self._off_cpu: dict[int, collections.deque[tuple[int, bool]]] = {}
        self._fine: collections.deque[Sample] = collections.deque(maxlen=FINE_HISTORY)
        self._coarse: collections.deque[Sample] = collections.deque(maxlen=COARSE_HISTORY)
        self._names: dict[int, str] = {}
        self._busy = threading.Event()
        self._woke_ns = 0
        self._pace_ns = interval_ns
        self._fork_hook = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.ident: int | None = None
        self.gil = gil_enabled()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        if not self._fork_hook:
            # A process forked while tracing (a pre-loading server) gets its own watchdog.
            os.register_at_fork(after_in_child=self._after_fork)
            self._fork_hook = True
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._busy.set()
        thread.join()
        self._thread = None
        self.ident = None
        self._busy.clear()
        self._fine.clear()
        self._coarse.clear()
        self._clocks.close()
        self._syscalls.close()
        self._off_cpu.clear()

    def _after_fork(self) -> None:
        if self._thread is None:
            return
        self._thread = None
        self.ident = None
        self._clocks = ThreadClocks()  # the parent's files describe the parent's threads
        self._syscalls = SyscallReader()
        self._off_cpu.clear()
        self._fine.clear()
        self._coarse.clear()
        self._work.clear()
        self._busy.clear()
        self.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def set_busy(self, busy: bool) -> None:
        """Whether traced requests are in flight: the watchdog only ticks while they are."""
        if busy:
            self._busy.set()
        else:
            self._busy.clear()
            # Thread idents are reused: what a thread worked for is not kept past a run.
            self._work.clear()

    # -- what the loop threads write -----------------------------------------------------

    def slot(self) -> LoopSlot:
        """The current thread's slot (made on first use)."""
        try:
            slot: LoopSlot = self.local.slot
        except AttributeError:
            slot = self.local.slot = LoopSlot()
            self._slots[threading.get_ident()] = slot
        return slot

    def slot_of(self, ident: int) -> LoopSlot | None:
        return self._slots.get(ident)

    def recent_work(self, ident: int, since_ns: int) -> object:
        """What thread ``ident`` was last seen computing for, if seen since ``since_ns``."""
        seen = self._work.get(ident)
        return seen[2] if seen is not None and seen[0] >= since_ns else None

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        while not self._stopping.is_set():
            self._busy.wait()
            if self._stopping.is_set():
                break
            # A request that ends within one interval costs no tick at all.
            self._woke_ns = time.monotonic_ns()
            self._pace_ns = self.interval_ns
            while not self._stopping.wait(self._pace_ns / 1e9) and self._busy.is_set():
                try:
                    self._tick()
                except Exception:
                    self.errors += 1
                    logger.exception("tracer watchdog tick failed")
            # Idle: what was sampled no longer describes what comes next.
            self._off_cpu.clear()
            self._fine.clear()
            self._coarse.clear()
            self._work.clear()

    def _tick(self) -> None:
        self.ticks += 1
        now = time.monotonic_ns()
        loops = list(self._loop_threads())
        slots = [slot for slot in map(self._slots.get, loops) if slot is not None]
        # Every thread's clock is read every few ticks, and at every tick, twice as often,
        # while a loop callback runs long (a stall or a slow call in the making).
        last = self._fine[-1][0] if self._fine else self._woke_ns
        running_long = any(
            slot.started_ns and now - slot.started_ns >= self.interval_ns // 2 for slot in slots
        )
        self._pace_ns = self.interval_ns // 2 if running_long else self.interval_ns
        if running_long or now - last >= FULL_EVERY * self.interval_ns:
            self._read_threads(now, set(loops))
        self._sample_loops(now, loops)

    def _read_threads(self, now: int, loops: set[int]) -> None:
        previous_t, previous = self._fine[-1] if self._fine else (self._woke_ns, {})
        # Computed for at least 2% of the time since the last reading.
        threshold = max(1, (now - previous_t) // 50)

        def computed(ident: int, cpu: int) -> bool:
            return ident in loops or cpu - previous.get(ident, (cpu, 0))[0] >= threshold

        readings, names = self._clocks.read(exclude=(self.ident,) if self.ident else ())
        self._names.update(names)
        self._note_off_cpu(now, readings, previous, threshold)
        self._fine.append((now, readings))
        self.readings += 1
        if self.readings % COARSE_EVERY == 1:
            self._coarse.append((now, readings))
        frames: dict[int, FrameType] | None = None
        # Note what the threads that computed since the last tick work for: by the time a
        # slow span of another thread ends, they may have finished.
        for ident, (cpu, _) in readings.items():
            if ident in loops or not computed(ident, cpu):
                continue
            seen = self._work.get(ident)
            if seen is not None and now - seen[1] < 2 * self.interval_ns:
                seen[0] = now
                continue
            if frames is None:
                frames = sys._current_frames()
            work = self._work_on_stack(frames.get(ident))
            if work is not None:
                self._work[ident] = [now, now, work]
            # Otherwise it has just finished (or works for no request): what it was seen
            # working for stays, as of when it was seen.

    def _note_off_cpu(
        self, now: int, readings: dict[int, Reading], previous: dict[int, Reading], threshold: int
    ) -> None:
        """For each thread that hardly computed since the last reading, note whether it
        waits on a futex (the GIL, a lock) or in another system call (I/O, a sleep)."""
        natives = procfs.native_ids()
        for ident, (cpu, _) in readings.items():
            before = previous.get(ident)
            if before is None or cpu - before[0] >= threshold:
                continue
            in_futex = self._syscalls.in_futex(natives.get(ident))
            if in_futex is not None:
                history = self._off_cpu.get(ident)
                if history is None:
                    history = self._off_cpu[ident] = collections.deque(maxlen=SYSCALL_HISTORY)
                history.append((now, in_futex))
        if len(self._off_cpu) > 2 * len(natives) + 32:
            for ident in [ident for ident in self._off_cpu if ident not in natives]:
                del self._off_cpu[ident]
            self._syscalls.forget(set(natives.values()))

    def in_io(self, ident: int, start_ns: int, end_ns: int) -> bool:
        """Whether thread ``ident``, when seen off the CPU from ``start_ns`` to ``end_ns``,
        was mostly in a system call other than a futex wait (I/O, a sleep)."""
        seen = [futex for t, futex in self._off_cpu.get(ident, ()) if start_ns <= t <= end_ns]
        return bool(seen) and seen.count(False) > seen.count(True)

    def _sample_loops(self, now: int, loops: list[int]) -> None:
        frames: dict[int, FrameType] | None = None
        for ident in loops:
            slot = self._slots.get(ident)
            if slot is None:
                continue
            started, generation = slot.started_ns, slot.generation
            if not started or now - started < self.sample_after_ns:
                continue
            samples = slot.samples
            if samples is not None and samples[0][0] == generation:
                if len(samples) >= MAX_SAMPLES:
                    continue
            else:
                samples = None
            if frames is None:
                frames = sys._current_frames()
            frame = frames.get(ident)
            if frame is None:
                continue
            sample = self.analyse(ident, frame, now)
            if slot.generation != generation:
                continue  # that callback ended while we looked
            if samples is None:
                slot.samples = [(generation, sample)]
            else:
                samples.append((generation, sample))

    # -- stacks --------------------------------------------------------------------------

    def analyse(self, ident: int, innermost: FrameType, now: int) -> StackSample:
        """What a loop thread's stack says held the loop."""
        chain: list[FrameType] = []  # innermost first, the tracer's own frames left out
        frame: FrameType | None = innermost
        while frame is not None and len(chain) < MAX_WALK:
            if not frame.f_code.co_filename.startswith(_TRACER_DIR):
                chain.append(frame)
            frame = frame.f_back
        stack = [_frame_entry(f) for f in reversed(chain[:MAX_STACK])]
        instrumented = self._instrumented()
        traced = next((i for i, f in enumerate(chain) if f.f_code in instrumented), None)
        if traced is None:
            named = next((f for f in chain if _named(f)), None)
            name = _dotted(named) if named is not None else None
            return StackSample(now, name, name, None, stack)
        # The request's own code: the traced view and, inside it, what is not library code.
        own = traced
        for index in range(traced - 1, -1, -1):
            if _is_library(chain[index].f_code.co_filename):
                break
            own = index
        deepest = next((i for i in range(own, traced + 1) if _named(chain[i])), traced)
        own_frame = chain[deepest]
        location = (own_frame.f_code.co_filename, own_frame.f_code.co_name, own_frame.f_lineno)
        below = chain[:deepest]
        library = next((f for f in reversed(below) if _named(f)), None)
        if library is not None:
            # The view (or its helper) called library code, which held the loop.
            name = _dotted(library)
            return StackSample(now, name, name, location, stack)
        sample = StackSample(now, own_frame.f_code.co_qualname, _dotted(own_frame), location, stack)
        if deepest == traced:
            call = self._call_in_progress(ident, own_frame)
            if call is not None and own_frame.f_lasti == call[2]:
                sample.call = (call[0], call[1])
        return sample

    # -- CPU of the other threads --------------------------------------------------------

    def _history(self, start_ns: int) -> list[Sample]:
        fine = list(self._fine)
        if fine and fine[0][0] <= start_ns:
            return fine
        oldest = fine[0][0] if fine else None
        return [s for s in self._coarse if oldest is None or s[0] < oldest] + fine

    def activity_since(
        self, start_ns: int
    ) -> tuple[int, dict[int, Reading], dict[int, Reading]] | None:
        """How much each thread ran (and waited for a core) from ``start_ns`` until now:
        the window measured (from the samples nearest ``start_ns``), each thread's reading
        then (interpolated) and now. None without samples."""
        history = self._history(start_ns)
        if not history:
            return None
        before = after = None
        for sample in reversed(history):
            if sample[0] <= start_ns:
                before = sample
                break
            after = sample
        now = time.monotonic_ns()
        now_readings, names = self._clocks.read(exclude=(self.ident,) if self.ident else ())
        self._names.update(names)
        if before is not None and after is not None and after[0] > before[0]:
            fraction = (start_ns - before[0]) / (after[0] - before[0])
            base_t = start_ns
            base = {}
            for ident, (cpu, wait) in after[1].items():
                cpu0, wait0 = before[1].get(ident, (0, 0))
                base[ident] = (
                    int(cpu0 + (cpu - cpu0) * fraction),
                    int(wait0 + (wait - wait0) * fraction),
                )
        else:
            base_t, base = before or after or (now, {})
        return max(0, now - base_t), base, now_readings

    def cause(self, start_ns: int, duration_ns: int, cpu_ns: int, ident: int) -> Cause:
        """Why thread ``ident`` was slow from ``start_ns`` for ``duration_ns``, using
        ``cpu_ns`` of CPU meanwhile."""
        in_io = self.in_io(ident, start_ns, start_ns + duration_ns)
        measured = self.activity_since(start_ns)
        if measured is None:
            cause, busiest = classify(duration_ns, cpu_ns, None, 0, gil=self.gil, in_io=in_io)
            return Cause(cause)
        window, then, now = measured
        # Time the thread was ready to run but every core was busy counts as computing.
        own_wait = 0
        if ident in then and ident in now:
            own_wait = max(0, now[ident][1] - then[ident][1])
        others = {
            other: (
                max(0, cpu - then.get(other, (0, 0))[0]),
                max(0, wait - then.get(other, (0, 0))[1]),
            )
            for other, (cpu, wait) in now.items()
            if other != ident
        }
        cause, busiest = classify(
            duration_ns, cpu_ns, others, window, gil=self.gil, ready_ns=own_wait, in_io=in_io
        )
        if busiest is None:
            return Cause(cause)
        return Cause(cause, self._names.get(busiest), busiest)


def pick(samples: list[StackSample], long_ns: int) -> StackSample | None:
    """The sample naming what held the loop most often (the later one of a tie), at the
    line seen most often for it.

    A call seen in progress names the holder if it was seen in more than one sample, or
    had gone on for ``long_ns`` when seen: otherwise it was one of many short calls and
    the frame's own code held the loop.
    """
    if not samples:
        return None
    starts = Counter(sample.call[1] for sample in samples if sample.call is not None)
    resolved: list[StackSample] = []
    for sample in samples:
        call = sample.call
        if call is not None and (starts[call[1]] > 1 or sample.t_ns - call[1] >= long_ns):
            sample = dataclasses.replace(sample, holder=call[0], culprit=call[0])
        resolved.append(sample)
    holders = Counter(sample.holder for sample in resolved)
    top = max(holders.values())
    holder = next(s.holder for s in reversed(resolved) if holders[s.holder] == top)
    mine = [sample for sample in resolved if sample.holder == holder]
    lines = Counter(sample.location for sample in mine)
    best = max(lines.values())
    return next(s for s in reversed(mine) if lines[s.location] == best)


def request_of_thread(frame: FrameType | None, variable: contextvars.ContextVar[Any]) -> Any:
    """The value ``variable`` has in the work a thread pool thread runs now, from the
    thread's stack (``concurrent.futures`` work items carry the caller's context: that is
    how asyncio.to_thread and asgiref's sync_to_async pass it)."""
    depth = 0
    while frame is not None and depth < MAX_WALK:
        code = frame.f_code
        context: contextvars.Context | None = None
        if code.co_name == "run" and code.co_filename.endswith(_FUTURES_THREAD):
            context = _context_in(getattr(frame.f_locals.get("self"), "fn", None))
        elif code.co_filename.endswith(_ASGIREF_SYNC):
            # asgiref's thread_handler runs the call inside ``context.run``.
            found = frame.f_locals.get("context")
            context = found if isinstance(found, contextvars.Context) else None
        if context is not None:
            return context.get(variable)
        frame = frame.f_back
        depth += 1
    return None


_FUTURES_THREAD = os.path.join("concurrent", "futures", "thread.py")
_ASGIREF_SYNC = os.path.join("asgiref", "sync.py")


def _context_in(function: object) -> contextvars.Context | None:
    """The Context a work item's callable runs in: ``partial(context.run, ...)`` or a
    partial with ``context.run`` among its arguments."""
    candidates: list[object] = [function]
    if isinstance(function, functools.partial):
        candidates = [function.func, *function.args]
    for candidate in candidates:
        owner = getattr(candidate, "__self__", None) if _is_builtin_method(candidate) else None
        if isinstance(owner, contextvars.Context):
            return owner
    return None


def _is_builtin_method(value: object) -> bool:
    return type(value).__name__ == "builtin_function_or_method"


def _frame_entry(frame: FrameType) -> events.StackFrame:
    return events.stack_frame(frame.f_code.co_filename, frame.f_code.co_name, frame.f_lineno)


def _named(frame: FrameType) -> bool:
    """Not a generator expression, comprehension or lambda: those are part of the function
    that made them."""
    name = frame.f_code.co_name
    return not (name.startswith("<") and name != "<module>")


def _dotted(frame: FrameType) -> str:
    module = frame.f_globals.get("__name__")
    qualname = frame.f_code.co_qualname
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


@functools.cache
def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    prefixes = {
        paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths
    }
    prefixes.add(os.path.dirname(os.__file__))
    return tuple(os.path.abspath(prefix) + os.sep for prefix in prefixes)


@functools.lru_cache(maxsize=4096)
def _is_library(filename: str) -> bool:
    """Code of Python itself or of an installed package, not the application's."""
    if filename.startswith("<"):
        return True
    return os.path.abspath(filename).startswith(_library_prefixes()) or "site-packages" in filename
