"""Thread hops: every time a traced request's code crosses to another OS thread and back.

asgiref's ``SyncToAsync`` and ``AsyncToSync`` (and ``asyncio.to_thread``) are patched while
the tracer is on. The caller's side of each hop notes when it asked and when it got its
answer; the thread that ran the code notes which thread it is and the CPU it used. Hops made
before a request's trace exists (Django's ``request_started`` receivers run before any view
is known) are kept on the request's ``PendingHops`` and recorded once the trace starts.

Nothing here imports Django: a hop's purpose is told from the dotted name of what it ran.
"""

from __future__ import annotations

import asyncio
import asyncio.threads
import contextlib
import ctypes
import functools
import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync

from tracer import events, procfs
from tracer.recorder import RequestTrace, current_request, where


class _ThreadCounter:
    """The process's OS thread count.

    The kernel's figure is ``/proc/self/stat``'s ``num_threads``, read through a libc call
    that keeps the GIL (``ctypes.PyDLL``), so a sample never waits for the GIL to come back.
    Reading it costs tens of microseconds, and a request samples several times, so it is
    read at most once every ``refresh_ns``; in between, the count is Python's own count of
    its threads (exact at once: a thread is counted from ``start()``) plus the threads
    Python does not know of, as of the last reading (threads a C library started: nearly
    always none)."""

    def __init__(self, refresh_ns: int = 20_000_000) -> None:
        self.refresh_ns = refresh_ns
        self._pid = 0
        self._fd: int | None = None
        self._buffer = ctypes.create_string_buffer(1024)
        self._read_ns = 0
        self._native_only = 0

    def count(self) -> int | None:
        now = time.monotonic_ns()
        python_threads = threading.active_count()
        if self._pid == os.getpid() and now - self._read_ns < self.refresh_ns:
            return python_threads + self._native_only
        counted = self._read()
        if counted is None:
            return None
        self._read_ns = now
        self._native_only = max(0, counted - python_threads)
        return counted

    def _read(self) -> int | None:
        if not procfs.available():
            return None
        pid = os.getpid()
        if pid != self._pid:  # first use, or a forked child: /proc/self was the parent
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            try:
                self._fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
            except OSError:
                self._fd = None
            self._pid = pid
        if self._fd is None:
            return None
        stat = procfs.read_at_start(self._fd, self._buffer)
        if stat is None:
            return None
        try:
            # Field 20; the command name before it (in parentheses) may hold spaces.
            return int(stat.rsplit(b")", 1)[1].split()[17])
        except (IndexError, ValueError):
            return None


_thread_counter = _ThreadCounter()


def os_thread_count() -> int | None:
    """The process's OS threads now (Linux), or None where /proc cannot tell."""
    return _thread_counter.count()


@dataclass
class PendingHops:
    """A request's hops and thread counts from before its trace existed (the server glue
    keeps one per arriving request and calls ``attach`` when the trace starts)."""

    trace: RequestTrace | None = None
    # Recorded with no request (the trace did not exist yet); attach() names it.
    hops: list[events.ThreadHop] = field(default_factory=list)
    samples: list[tuple[int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when the request's view turned out not to be traced: nothing more is kept.
    closed: bool = False

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.hops.clear()
            self.samples.clear()

    def attach(self, trace: RequestTrace) -> None:
        """Record what was kept, with its real times, and send what follows to ``trace``."""
        with self.lock:
            self.trace = trace
            hops, self.hops = self.hops, []
            samples, self.samples = self.samples, []
        for t_ns, count in samples:
            trace.recording.sample_threads(t_ns, count)
        for hop in hops:
            hop["request"] = trace.id
            trace.emit(hop)


# The arriving request's pending hops; set by the server glue for the request's context.
pending_hops: ContextVar[PendingHops | None] = ContextVar("traced_pending_hops", default=None)


def sample_threads(trace: RequestTrace | None, pending: PendingHops | None = None) -> None:
    """Note the process's OS thread count now, in the trace (or kept for it)."""
    count = os_thread_count()
    if count is None:
        return
    now = time.monotonic_ns()
    if trace is None and pending is not None:
        with pending.lock:
            if pending.trace is None:
                if not pending.closed:
                    pending.samples.append((now, count))
                return
            trace = pending.trace
    if trace is not None:
        trace.recording.sample_threads(now, count)


@dataclass
class _Hop:
    """One hop in progress: the caller's side fills in the first fields, the thread that
    runs the code the rest."""

    adapter: events.HopAdapter
    target: str
    purpose: events.HopPurpose
    from_thread: str
    started_ns: int
    trace: RequestTrace | None
    pending: PendingHops | None
    to_thread: str | None = None
    thread_new: bool = False
    # When to_thread began and finished running the code (None: it never began).
    ran_from_ns: int | None = None
    ran_until_ns: int | None = None
    cpu_started_ns: int = 0
    cpu_ns: int = 0

    def arrived(self, seen: set[int]) -> None:
        """Called on the thread that runs the hop's code, as it starts."""
        if self.to_thread is not None:
            return
        self.to_thread = threading.current_thread().name
        native = threading.get_native_id()
        self.thread_new = native not in seen
        seen.add(native)
        self.cpu_started_ns = time.thread_time_ns()
        self.ran_from_ns = time.monotonic_ns()

    def left(self) -> None:
        self.cpu_ns = time.thread_time_ns() - self.cpu_started_ns
        self.ran_until_ns = time.monotonic_ns()


# The hop whose code is being run in this context (copied into the thread that runs it).
_current_hop: ContextVar[_Hop | None] = ContextVar("traced_hop", default=None)


class HopTracer:
    """Patches the thread adapters while enabled and records each hop of a traced request.

    ``is_traced_view`` tells whether a function is a registered view; ``on_error`` is
    called (inside an ``except``) whenever the tracer's own code fails.
    """

    def __init__(self, is_traced_view: Callable[[Any], bool], on_error: Callable[[], None]) -> None:
        self.is_traced_view = is_traced_view
        self.on_error = on_error
        self.enabled = False
        # Native ids of the OS threads this process was seen to run, to tell new ones.
        self.seen_threads: set[int] = set()
        self._originals: list[tuple[object, str, object]] = []

    # -- lifecycle ---------------------------------------------------------------------

    def enable(self) -> None:
        if self.enabled:
            return
        # Threads alive now were not made for a traced request.
        self.seen_threads.update(n for n in procfs.native_ids().values() if n is not None)
        try:
            self._patch(SyncToAsync, "__call__", self._sync_to_async_call)
            self._patch(SyncToAsync, "thread_handler", self._sync_to_async_thread_handler)
            self._patch(AsyncToSync, "__call__", self._async_to_sync_call)
            self._patch(AsyncToSync, "main_wrap", self._async_to_sync_main_wrap)
            to_thread = self._to_thread(asyncio.threads.to_thread)
            # Views call it as asyncio.to_thread; asyncio's own name for it is the other.
            self._patch(asyncio.threads, "to_thread", lambda original: to_thread)
            self._patch(asyncio, "to_thread", lambda original: to_thread)
        except Exception:
            self.disable()
            raise
        self.enabled = True

    def disable(self) -> None:
        """Put back every original, in reverse order."""
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)
        self.enabled = False

    def _patch(self, owner: object, name: str, wrap: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` with ``wrap(original)``, remembering the original."""
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        self._originals.append((owner, name, original))
        setattr(owner, name, wrap(original))

    # -- the caller's side -------------------------------------------------------------

    def _start(self, adapter: events.HopAdapter, func: Any, helper: object) -> _Hop | None:
        """A hop about to start in a traced request (or one arriving), else None."""
        trace = current_request.get()
        pending = pending_hops.get() if trace is None else None
        if trace is None and (pending is None or pending.closed):
            return None
        try:
            target = _dotted_name(func)
            hop = _Hop(
                adapter=adapter,
                target=target,
                purpose=self._purpose(func, target, helper, before_view=trace is None),
                from_thread=threading.current_thread().name,
                started_ns=time.monotonic_ns(),
                trace=trace,
                pending=pending,
            )
            # The thread count is sampled as the hop's code starts (in _in_thread and
            # main_wrap, once its thread exists) and as the hop ends.
            return hop
        except Exception:
            self.on_error()
            return None

    def _finish(self, hop: _Hop) -> None:
        try:
            ended = time.monotonic_ns()
            # The span the other thread ran the code; the caller got the answer at t_ns
            # (later by the time its own thread or loop took to notice).
            started = hop.ran_from_ns if hop.ran_from_ns is not None else hop.started_ns
            until = hop.ran_until_ns if hop.ran_until_ns is not None else ended
            task, _ = where()
            trace = hop.trace
            event = events.thread_hop(
                # The event happened on the thread that ran the code.
                events.origin(trace.id if trace else None, task, hop.to_thread or hop.from_thread),
                ended,
                adapter=hop.adapter,
                purpose=hop.purpose,
                target=hop.target,
                from_thread=hop.from_thread,
                to_thread=hop.to_thread or hop.from_thread,
                started_ns=started,
                duration_ns=max(0, until - started),
                cpu_ns=max(0, hop.cpu_ns),
                thread_new=hop.thread_new,
                called_ns=hop.started_ns,
            )
            if trace is None and hop.pending is not None:
                with hop.pending.lock:
                    if hop.pending.trace is None and not hop.pending.closed:
                        hop.pending.hops.append(event)
                    trace = hop.pending.trace
                if trace is None:
                    return
                event["request"] = trace.id
            if trace is not None:
                trace.emit(event)
        except Exception:
            self.on_error()

    def _purpose(
        self, func: Any, target: str, helper: object, *, before_view: bool
    ) -> events.HopPurpose:
        if self.is_traced_view(func):
            return events.HOP_VIEW
        # Django's names (strings: this module does not import Django).
        if target.startswith("django.db.") or type(helper).__name__ == "DatabaseSyncToAsync":
            return events.HOP_DATABASE
        if target.startswith("django.http.") and target.endswith(".close"):
            return events.HOP_RESPONSE_CLOSE
        if before_view and target.endswith("Signal.asend.<locals>.sync_send"):
            return events.HOP_REQUEST_STARTED
        return events.HOP_OTHER

    # -- the patches -------------------------------------------------------------------

    def _sync_to_async_call(self, original: Any) -> Any:
        hops = self

        @functools.wraps(original)
        async def __call__(adapter: SyncToAsync[Any, Any], *args: Any, **kwargs: Any) -> Any:
            hop = hops._start(events.ADAPTER_SYNC_TO_ASYNC, adapter.func, adapter)
            if hop is None:
                return await original(adapter, *args, **kwargs)
            token = _current_hop.set(hop)
            try:
                return await original(adapter, *args, **kwargs)
            finally:
                _current_hop.reset(token)
                hops._finish(hop)

        return __call__

    def _sync_to_async_thread_handler(self, original: Any) -> Any:
        hops = self

        @functools.wraps(original)
        def thread_handler(adapter: Any, loop: Any, exc_info: Any, task_context: Any,
                           func: Any, *args: Any, **kwargs: Any) -> Any:  # fmt: skip
            # args[0] is the call to run; it runs inside the caller's copied context,
            # where the hop in progress can be read.
            if args:
                args = (hops._in_thread(args[0]), *args[1:])
            return original(adapter, loop, exc_info, task_context, func, *args, **kwargs)

        return thread_handler

    def _in_thread(self, child: Callable[[], Any]) -> Callable[[], Any]:
        hops = self

        def run_child() -> Any:
            hop = _current_hop.get()
            if hop is None:
                # Not a traced request's hop, but this thread has now been seen.
                hops.seen_threads.add(threading.get_native_id())
                return child()
            try:
                hop.arrived(hops.seen_threads)
                sample_threads(hop.trace, hop.pending)
            except Exception:
                hops.on_error()
            try:
                return child()
            finally:
                try:
                    hop.left()
                except Exception:
                    hops.on_error()

        return run_child

    def _async_to_sync_call(self, original: Any) -> Any:
        hops = self

        @functools.wraps(original)
        def __call__(adapter: AsyncToSync[Any, Any], *args: Any, **kwargs: Any) -> Any:
            hop = hops._start(events.ADAPTER_ASYNC_TO_SYNC, adapter.awaitable, adapter)
            if hop is None:
                return original(adapter, *args, **kwargs)
            token = _current_hop.set(hop)
            try:
                return original(adapter, *args, **kwargs)
            finally:
                _current_hop.reset(token)
                hops._finish(hop)

        return __call__

    def _async_to_sync_main_wrap(self, original: Any) -> Any:
        hops = self

        @functools.wraps(original)
        async def main_wrap(adapter: Any, call_result: Any, exc_info: Any, task_context: Any,
                            context: Any, awaitable: Any) -> None:  # fmt: skip
            # Runs on the loop that runs the coroutine; the caller's context is context[0].
            hop = None
            try:
                hop = context[0].get(_current_hop) if context else None
                if hop is not None:
                    hop.arrived(hops.seen_threads)
                    sample_threads(hop.trace, hop.pending)
            except Exception:
                hops.on_error()
            try:
                await original(adapter, call_result, exc_info, task_context, context, awaitable)
            finally:
                if hop is not None:
                    try:
                        hop.left()
                    except Exception:
                        hops.on_error()

        return main_wrap

    def _to_thread(self, original: Any) -> Any:
        hops = self

        # Same name and module as asyncio's, so a traced view's call of it reads the same.
        @functools.wraps(original)
        async def to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
            if current_request.get() is None:
                return await original(func, *args, **kwargs)
            hop = hops._start(events.ADAPTER_TO_THREAD, func, None)
            if hop is None:
                return await original(func, *args, **kwargs)
            token = _current_hop.set(hop)
            try:
                return await original(hops._in_thread(functools.partial(func, *args, **kwargs)))
            finally:
                _current_hop.reset(token)
                hops._finish(hop)

        return to_thread


def _dotted_name(func: Any) -> str:
    """``module.qualname`` of what a hop ran (of the function inside a partial)."""
    while isinstance(func, functools.partial):
        func = func.func
    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{name}" if isinstance(module, str) else str(name)
