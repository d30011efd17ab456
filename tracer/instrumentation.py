"""Instrumentation of the traced views with sys.monitoring, and the event-loop stall detector.

Only the code objects of registered views get local events, so the rest of the process runs
at full speed. ``enable()`` and ``disable()`` are explicit and idempotent; nothing happens at
import time. Every callback swallows its own errors: tracing must never change what a view
does or returns.
"""

from __future__ import annotations

import asyncio
import linecache
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any

from tracer import events
from tracer.hops import HopTracer
from tracer.loop_clock import LoopClock
from tracer.recorder import Recording, RequestTrace, current_request
from tracer.safe_repr import safe_repr
from tracer.watchdog import LoopSlot, Watchdog, pick, request_of_thread

logger = logging.getLogger(__name__)

TOOL_NAME = "django-async-visualizer"
_monitoring = sys.monitoring
_E = _monitoring.events
LOCAL_EVENTS = _E.PY_START | _E.PY_RETURN | _E.PY_YIELD | _E.PY_RESUME | _E.CALL | _E.LINE
# Exceptions thrown into, raised in and unwinding a frame: Python 3.13 has them only as
# process-wide events, so their callbacks first check that the code is a traced view's.
GLOBAL_EVENTS = _E.PY_THROW | _E.RAISE | _E.PY_UNWIND


@dataclass
class TracedView:
    """A registered view: its function and what the application says about it."""

    function: Callable[..., Any]
    info: dict[str, Any] = field(default_factory=dict)


# Views registered for tracing, by the identity of their code object: Python 3.13 hashes
# a code object by its contents, anew at every lookup (microseconds for a long function),
# and these lookups run on every request. The TracedView keeps the function, and with it
# the code object and its id, alive. Registration only notes the view; the instrumentation
# is applied by Instrumentation.enable().
REGISTRY: dict[int, TracedView] = {}


def register_view(function: Callable[..., Any], **info: Any) -> Callable[..., Any]:
    """Mark ``function`` for tracing and return it unchanged (a wrapper would change how
    Django classifies the view)."""
    REGISTRY[id(function.__code__)] = TracedView(function, info)
    if _active is not None:
        _active.instrument(function.__code__)
    return function


# Code the traced views call (their helpers, tracer/targets.py), by id(code) as REGISTRY:
# instrumented like a view, but its start and return are not the view's and its awaits are
# reported by the view's own frame (an await suspends every frame of the chain).
HELPERS: dict[int, CodeType] = {}

# Functions that find the traced function behind a URL's view when it is not one itself
# (a class-based view's ``as_view()`` closure, a decorator's wrapper): called with the view
# and the request's method (None: not known), they return the registered function or None.
# Consulted only when the registry has no entry for the view's own code.
VIEW_RESOLVERS: list[Callable[[Any, str | None], Callable[..., Any] | None]] = []


def register_helper(code: CodeType) -> None:
    """Mark ``code`` as a helper of traced views: its blocking calls are recorded."""
    HELPERS[id(code)] = code
    if _active is not None:
        _active.instrument(code)


def traced_view_info(function: Any, method: str | None = None) -> dict[str, Any] | None:
    """What was registered with ``function`` (or the function a resolver finds behind it
    for a request of ``method``), or None if it is not traced."""
    target = traced_view_function(function, method)
    return registered_info(target) if target is not None else None


def registered_info(function: Any) -> dict[str, Any] | None:
    """What was registered with ``function`` itself (no resolver asked), or None."""
    view = _registered(function)
    return view.info if view is not None else None


def traced_view_function(function: Any, method: str | None = None) -> Callable[..., Any] | None:
    """The registered function that runs for the view ``function`` (itself, or what a
    resolver found behind it), or None if it is not traced."""
    if _registered(function) is not None:
        return function  # type: ignore[no-any-return]
    for resolve in VIEW_RESOLVERS:
        target = resolve(function, method)
        if target is not None and _registered(target) is not None:
            return target
    return None


def _registered(function: Any) -> TracedView | None:
    code = getattr(function, "__code__", None)
    view = REGISTRY.get(id(code)) if isinstance(code, CodeType) else None
    return view if view is not None and view.function.__code__ is code else None


@dataclass
class _FrameState:
    """What the callbacks remember about one running frame of a traced view."""

    call_name: str | None = None
    call_offset: int = -1
    call_line: int | None = None
    call_started_ns: int = 0
    call_cpu_ns: int = 0
    # The await in progress: where, since when, and how often the task went off the loop.
    await_offset: int | None = None
    awaiting: str | None = None
    suspended_line: int | None = None
    first_suspended_ns: int = 0
    suspended_ns: int | None = None
    resumed_ns: int | None = None
    off_loop_ns: int = 0
    suspensions: int = 0
    # A helper's frame (see HELPERS): only its blocking calls are reported.
    helper: bool = False


@dataclass
class _LongestCall:
    request: RequestTrace
    location: tuple[str, str, int]
    callable: str
    duration_ns: int


class Instrumentation:
    """Turns the tracer on and off; while on, turns monitoring callbacks into events."""

    def __init__(
        self,
        loop_block_threshold_ns: int = 20_000_000,
        blocking_call_threshold_ns: int = 10_000_000,
    ) -> None:
        self.loop_block_threshold_ns = loop_block_threshold_ns
        self.blocking_call_threshold_ns = blocking_call_threshold_ns
        self.enabled = False
        self.errors = 0
        self._tool_id: int | None = None
        self._instrumented: set[CodeType] = set()
        # The same, by id(code), for the checks that run on every exception in the process
        # (see REGISTRY on hashing code objects).
        self._instrumented_ids: set[int] = set()
        self._await_texts: dict[tuple[int, int], str] = {}
        self._original_handle_run: Callable[[asyncio.Handle], None] | None = None
        # Event-loop threads seen serving requests, and the requests in flight on each.
        self._loop_threads: set[int] = set()
        self._in_flight: dict[int, set[RequestTrace]] = {}
        self.hops = HopTracer(lambda function: traced_view_info(function) is not None, self._failed)
        self._in_flight_lock = threading.Lock()
        self._busy = False
        # The request whose traced code last started on each thread.
        self._thread_requests: dict[int, RequestTrace] = {}
        self.watchdog = Watchdog(
            loop_threads=lambda: self._loop_threads,
            instrumented=lambda: self._instrumented,
            call_in_progress=self._call_in_progress,
            work_on_stack=lambda frame: request_of_thread(frame, current_request),
            interval_ns=max(2_000_000, min(loop_block_threshold_ns, 20_000_000) // 2),
            sample_after_ns=loop_block_threshold_ns // 2,
        )
        self.loop_clock = LoopClock(self.watchdog.local)

    # -- lifecycle ---------------------------------------------------------------------

    def enable(self) -> None:
        """Register the monitoring tool, instrument every registered view, time loop
        callbacks. Calling it again does nothing."""
        global _active
        if self.enabled:
            return
        if _active is not None:
            raise RuntimeError("another Instrumentation is already enabled")
        self._tool_id = _claim_tool_id()
        callbacks: dict[int, Callable[..., None]] = {
            _E.PY_START: self._on_start,
            _E.PY_RETURN: self._on_return,
            _E.PY_YIELD: self._on_yield,
            _E.PY_RESUME: self._on_resume,
            _E.CALL: self._on_call,
            _E.LINE: self._on_line,
        }
        for event, handler in callbacks.items():
            _monitoring.register_callback(self._tool_id, event, self._guarded(handler))
        exceptions: dict[int, Callable[..., None]] = {
            _E.PY_THROW: self._on_throw,
            _E.RAISE: self._on_raise,
            _E.PY_UNWIND: self._on_unwind,
        }
        for event, handler in exceptions.items():
            _monitoring.register_callback(self._tool_id, event, self._guarded_global(handler))
        _monitoring.set_events(self._tool_id, GLOBAL_EVENTS)
        self.enabled = True
        _active = self
        for view in list(REGISTRY.values()):
            self.instrument(view.function.__code__)
        for code in list(HELPERS.values()):
            self.instrument(code)
        self._patch_handle_run()
        self.loop_clock.enable()
        self._enable_hops()
        self.watchdog.start()

    def disable(self) -> None:
        """Undo everything enable() did, in reverse order. Calling it again does nothing."""
        global _active
        if not self.enabled:
            return
        tool_id = self._tool_id
        assert tool_id is not None
        try:
            self.watchdog.stop()
            self._disable_hops()
            self.loop_clock.disable()
            self._unpatch_handle_run()
        finally:
            try:
                _monitoring.set_events(tool_id, 0)
                for code in self._instrumented:
                    _monitoring.set_local_events(tool_id, code, 0)
                for event in (
                    _E.PY_START,
                    _E.PY_RETURN,
                    _E.PY_YIELD,
                    _E.PY_RESUME,
                    _E.CALL,
                    _E.LINE,
                    _E.PY_THROW,
                    _E.RAISE,
                    _E.PY_UNWIND,
                ):
                    _monitoring.register_callback(tool_id, event, None)
            finally:
                _monitoring.free_tool_id(tool_id)
                self._instrumented.clear()
                self._instrumented_ids.clear()
                self._tool_id = None
                self.enabled = False
                _active = None

    def instrument(self, code: CodeType) -> None:
        if not self.enabled or code in self._instrumented:
            return
        assert self._tool_id is not None
        _monitoring.set_local_events(self._tool_id, code, LOCAL_EVENTS)
        self._instrumented.add(code)
        self._instrumented_ids.add(id(code))

    @property
    def instrumented(self) -> frozenset[CodeType]:
        return frozenset(self._instrumented)

    # -- requests in flight (called by the server glue) --------------------------------

    def request_started(self, request: RequestTrace) -> None:
        if request.on_event_loop:
            self._loop_threads.add(request.thread_id)
            slot = self.watchdog.slot()
            if slot.started_ns and slot.cpu_ns < 0:
                # The loop callback began before any request was in flight: its CPU is
                # measured from now.
                slot.cpu_since_ns, slot.cpu_ns = time.monotonic_ns(), time.thread_time_ns()
        with self._in_flight_lock:
            self._in_flight.setdefault(request.thread_id, set()).add(request)
            self._set_busy()

    def request_finished(self, request: RequestTrace) -> None:
        with self._in_flight_lock:
            self._in_flight.get(request.thread_id, set()).discard(request)
            self._set_busy()
        for frame_id, state in list(request.frames.items()):
            if state.resumed_ns is not None:
                self._emit_resumed(request, None, state)
            request.frames.pop(frame_id, None)

    def _set_busy(self) -> None:
        """The watchdog runs only while requests are in flight (called under the lock)."""
        busy = any(self._in_flight.values())
        if busy != self._busy:
            self._busy = busy
            self.watchdog.set_busy(busy)

    def note_thread_request(self, ident: int, request: RequestTrace) -> None:
        """Note that ``request``'s code runs on thread ``ident`` (for naming who held the
        GIL). The instrumentation notes it when traced code starts on a thread; thread-hop
        patches can note it too."""
        if len(self._thread_requests) > 4096:
            self._thread_requests.clear()
        self._thread_requests[ident] = request

    # -- monitoring callbacks ----------------------------------------------------------

    def _guarded(self, handler: Callable[..., None]) -> Callable[..., None]:
        """Wrap a handler as a monitoring callback: it runs only inside a traced request,
        gets the traced frame, and can never raise into the traced code."""

        def callback(*args: Any) -> None:
            request = current_request.get()
            if request is None:
                return
            started = time.perf_counter_ns()
            try:
                handler(request, sys._getframe(1), *args)
            except Exception:
                self._failed()
            request.tracer_ns += time.perf_counter_ns() - started

        return callback

    def _guarded_global(self, handler: Callable[..., None]) -> Callable[..., None]:
        """Like _guarded, for the process-wide events: anything not in a traced view's code
        returns at once."""
        instrumented = self._instrumented_ids

        # Called on every exception anywhere in the process: the signature is spelled out
        # (RAISE, PY_UNWIND and PY_THROW all pass these three) so no tuple is packed.
        def callback(code: CodeType, offset: int, error: object) -> None:
            if id(code) not in instrumented:
                return
            request = current_request.get()
            if request is None:
                return
            started = time.perf_counter_ns()
            try:
                handler(request, sys._getframe(1), code, offset, error)
            except Exception:
                self._failed()
            request.tracer_ns += time.perf_counter_ns() - started

        return callback

    def _on_start(
        self, request: RequestTrace, frame: FrameType, code: CodeType, offset: int
    ) -> None:
        # The view is the first registered view code that starts in the request (a
        # class's handler method after its own dispatch, for example); any other traced
        # code is its helper. A recursive view's own code stays the view, as it was.
        view_code = request.view_code
        if (HELPERS and id(code) in HELPERS) or (view_code is not None and view_code != id(code)):
            request.frames[id(frame)] = _FrameState(helper=True)
            self.note_thread_request(threading.get_ident(), request)
            return
        request.view_code = id(code)
        now = time.monotonic_ns()
        moved = threading.get_ident() != request.thread_id
        if moved and request.on_event_loop and not request.view_started:
            request.emit(
                events.thread_handoff(
                    request.origin(frame),
                    time.monotonic_ns(),
                    from_thread=request.thread_name,
                    to_thread=threading.current_thread().name,
                    waited_ns=now - (request.type_checked_ns or now),
                )
            )
        request.view_started = True
        self.note_thread_request(threading.get_ident(), request)
        request.emit(events.view_started(request.origin(frame), now))

    def _on_call(
        self,
        request: RequestTrace,
        frame: FrameType,
        code: CodeType,
        offset: int,
        called: object,
        arg0: object,
    ) -> None:
        state = self._state(request, frame)
        self._finish_previous_step(request, frame, state)
        state.call_name = _callable_name(called, frame.f_globals.get("__name__"))
        state.call_offset = offset
        state.call_line = frame.f_lineno
        state.call_cpu_ns = time.thread_time_ns()
        state.call_started_ns = time.monotonic_ns()

    def _on_line(self, request: RequestTrace, frame: FrameType, code: CodeType, line: int) -> None:
        state = request.frames.get(id(frame))
        if state is not None:
            self._finish_previous_step(request, frame, state)

    def _on_yield(
        self, request: RequestTrace, frame: FrameType, code: CodeType, offset: int, value: object
    ) -> None:
        state = self._state(request, frame)
        self._end_call(request, frame, state)
        if state.helper:
            return
        now = time.monotonic_ns()
        if state.resumed_ns is not None and state.await_offset == offset:
            # The same await going off the loop again: the awaited code ran a little and
            # waits once more. The view is still paused at one await.
            state.off_loop_ns += state.resumed_ns - (state.suspended_ns or now)
            state.suspensions += 1
            state.suspended_ns, state.resumed_ns = now, None
            return
        self._flush_resumed(request, frame, state)
        state.await_offset = offset
        state.awaiting = self._await_text(code, offset)
        state.suspended_line = frame.f_lineno
        state.first_suspended_ns = state.suspended_ns = now
        state.off_loop_ns, state.suspensions = 0, 1
        request.emit(events.await_suspended(request.origin(frame), now, awaiting=state.awaiting))

    def _on_resume(
        self, request: RequestTrace, frame: FrameType, code: CodeType, offset: int
    ) -> None:
        state = request.frames.get(id(frame))
        if state is not None and state.suspended_ns is not None:
            # Announced at the frame's next step, so that its locals show what the await
            # produced (for example the variable it was assigned to).
            state.resumed_ns = time.monotonic_ns()

    def _on_throw(
        self, request: RequestTrace, frame: FrameType, code: CodeType, offset: int, error: object
    ) -> None:
        """An exception was thrown into the view's coroutine (a timeout, a cancellation, a
        failed future): the await it was paused at ends with it."""
        state = request.frames.get(id(frame))
        if state is None or state.suspended_ns is None:
            return
        state.resumed_ns = time.monotonic_ns()
        self._emit_resumed(request, frame, state, exception=_type_name(error))

    def _on_raise(
        self, request: RequestTrace, frame: FrameType, code: CodeType, offset: int, error: object
    ) -> None:
        state = request.frames.get(id(frame))
        if state is None:
            return
        if state.resumed_ns is not None and not isinstance(
            error, StopIteration | StopAsyncIteration
        ):
            # Resumed, and the awaited code raised before the view took another step. (An
            # awaited future's iterator hands its result over as StopIteration.)
            self._emit_resumed(request, frame, state, exception=_type_name(error))
        self._end_call(request, frame, state)

    def _on_unwind(
        self, request: RequestTrace, frame: FrameType, code: CodeType, offset: int, error: object
    ) -> None:
        """The view's frame ends with an exception: forget it."""
        state = request.frames.pop(id(frame), None)
        if state is None:
            return
        if state.resumed_ns is not None:
            self._emit_resumed(request, frame, state, exception=_type_name(error))
        self._end_call(request, frame, state)

    def _on_return(
        self, request: RequestTrace, frame: FrameType, code: CodeType, offset: int, value: object
    ) -> None:
        state = request.frames.pop(id(frame), None)
        if state is not None:
            self._finish_previous_step(request, frame, state)
            if state.helper:
                return
        request.emit(
            events.view_returned(
                request.origin(frame), time.monotonic_ns(), returned=safe_repr(value)
            )
        )

    # -- helpers of the callbacks ------------------------------------------------------

    @staticmethod
    def _state(request: RequestTrace, frame: FrameType) -> _FrameState:
        state = request.frames.get(id(frame))
        if state is None:
            state = request.frames[id(frame)] = _FrameState()
        return state

    def _finish_previous_step(
        self, request: RequestTrace, frame: FrameType, state: _FrameState
    ) -> None:
        """The frame moved on: end the call in progress and announce a pending resume."""
        self._end_call(request, frame, state)
        self._flush_resumed(request, frame, state)

    def _end_call(self, request: RequestTrace, frame: FrameType, state: _FrameState) -> None:
        if state.call_name is None:
            return
        now = time.monotonic_ns()
        duration = now - state.call_started_ns
        name, line = state.call_name, state.call_line or frame.f_lineno
        state.call_name = None
        if duration < self.blocking_call_threshold_ns:
            return
        cpu = time.thread_time_ns() - state.call_cpu_ns
        ident = threading.get_ident()
        on_loop = request.on_event_loop and ident == request.thread_id
        location = (frame.f_code.co_filename, frame.f_code.co_name, line)
        cause = self.watchdog.cause(state.call_started_ns, duration, cpu, ident)
        request.emit(
            events.call_blocking(
                request.origin(frame, location),
                now,
                callable=name,
                duration_ns=duration,
                cpu_ns=cpu,
                waiting=cpu * 2 < duration,
                on_event_loop=on_loop,
                cause=cause.cause,
                gil_thread=cause.gil_thread,
                gil_request=self._request_id_on(
                    cause.gil_ident, request.recording, state.call_started_ns
                ),
            )
        )
        if on_loop:
            slot = self.watchdog.slot()
            longest = slot.longest
            if longest is None or longest.duration_ns < duration:
                slot.longest = _LongestCall(request, location, name, duration)

    def _flush_resumed(self, request: RequestTrace, frame: FrameType, state: _FrameState) -> None:
        if state.resumed_ns is not None:
            self._emit_resumed(request, frame, state)

    def _emit_resumed(
        self,
        request: RequestTrace,
        frame: FrameType | None,
        state: _FrameState,
        exception: str | None = None,
    ) -> None:
        resumed, suspended, awaiting = state.resumed_ns, state.suspended_ns, state.awaiting
        assert resumed is not None and suspended is not None and awaiting is not None
        state.off_loop_ns += resumed - suspended
        state.resumed_ns = state.suspended_ns = state.await_offset = None
        code = frame.f_code if frame is not None else None
        origin = request.origin(
            frame,
            (
                code.co_filename if code else None,
                code.co_name if code else None,
                state.suspended_line,
            ),
        )
        duration = resumed - state.first_suspended_ns
        request.emit(
            events.await_resumed(
                origin,
                resumed,
                awaiting=awaiting,
                duration_ns=duration,
                off_loop_ns=state.off_loop_ns,
                suspensions=state.suspensions,
            )
            if exception is None
            else events.await_raised(
                origin,
                resumed,
                awaiting=awaiting,
                duration_ns=duration,
                off_loop_ns=state.off_loop_ns,
                suspensions=state.suspensions,
                exception=exception,
            )
        )

    def _await_text(self, code: CodeType, offset: int) -> str:
        """The source of the awaited expression at this yield, e.g. ``fetch_data(delay)``."""
        key = (id(code), offset)  # an instrumented code object, kept alive by REGISTRY
        text = self._await_texts.get(key)
        if text is None:
            text = _source_at(code, offset)
            self._await_texts[key] = text
        return text

    def _failed(self) -> None:
        self.errors += 1
        logger.exception("tracer callback failed; the traced code was not affected")

    # -- thread hops (tracer/hops.py) --------------------------------------------------

    def _enable_hops(self) -> None:
        self.hops.enable()

    def _disable_hops(self) -> None:
        self.hops.disable()

    # -- event-loop stalls -------------------------------------------------------------

    def _patch_handle_run(self) -> None:
        original = asyncio.events.Handle._run
        self._original_handle_run = original
        instrumentation = self
        slot_of_thread = self.watchdog.slot
        local = self.watchdog.local
        monotonic_ns, thread_time_ns = time.monotonic_ns, time.thread_time_ns
        loop_clock, stamps = self.loop_clock, self.loop_clock.stamps

        def _run(handle: asyncio.Handle) -> None:
            # Every callback is timed: whether its loop serves traced requests may only
            # become known while it runs (the first request of a server, for example).
            # The slot tells the watchdog what runs, so it can sample long callbacks.
            try:
                slot = local.slot
            except AttributeError:
                slot = slot_of_thread()
            slot.longest = None
            slot.handle = handle
            generation = slot.generation = slot.generation + 1
            started = slot.cpu_since_ns = monotonic_ns()
            # Only while traced requests are in flight: the thread's CPU clock costs a
            # system call.
            slot.cpu_ns = thread_time_ns() if instrumentation._busy else -1
            slot.started_ns = started
            try:
                return original(handle)
            finally:
                slot.started_ns = 0
                elapsed = monotonic_ns() - started
                if stamps and (stamp := stamps.pop(id(handle), None)) is not None:
                    loop_clock.ran(stamp, started, started + elapsed)  # tracer/loop_clock.py
                if (
                    elapsed >= instrumentation.loop_block_threshold_ns
                    and threading.get_ident() in instrumentation._loop_threads
                ):
                    instrumentation._report_stall(handle, slot, generation, started, elapsed)
                slot.handle = None

        asyncio.events.Handle._run = _run  # type: ignore[method-assign,assignment]

    def _unpatch_handle_run(self) -> None:
        if self._original_handle_run is not None:
            asyncio.events.Handle._run = self._original_handle_run  # type: ignore[method-assign,assignment]
            self._original_handle_run = None

    def _report_stall(
        self, handle: asyncio.Handle, slot: LoopSlot, generation: int, started: int, elapsed: int
    ) -> None:
        try:
            end = started + elapsed
            samples = [sample for seen, sample in slot.samples or () if seen == generation]
            slot.samples = None
            picked = pick(samples, self.watchdog.sample_after_ns)
            longest: _LongestCall | None = slot.longest
            context = getattr(handle, "_context", None)
            culprit = context.get(current_request) if context is not None else None
            ident = threading.get_ident()
            held_by = culprit_name = longest.callable if longest else None
            location: tuple[str, str, int | None] | None = (
                longest.location if longest and longest.request is culprit else None
            )
            stack = None
            if (
                picked is not None
                and picked.location is None
                and location is not None
                and longest is not None
                and longest.duration_ns * 2 >= elapsed
            ):
                # The samples saw only code outside the request's own (the server writing
                # the response, when the view's step ran on into it), while a measured call
                # of the view took most of the callback: on a busy machine the watchdog may
                # get to sample only the tail.
                picked = None
            if picked is not None:
                # What the loop thread's stack showed beats the calls the view made.
                held_by, culprit_name = picked.holder, picked.culprit
                stack = picked.stack
                location = picked.location or location
            cause = cpu = None
            if slot.cpu_ns >= 0:
                measured = end - slot.cpu_since_ns
                cpu = time.thread_time_ns() - slot.cpu_ns
                cause = self.watchdog.cause(slot.cpu_since_ns, measured, cpu, ident)
            gil_ident = cause.gil_ident if cause else None

            def stall(origin: events.Origin, recording: Recording) -> events.LoopBlocked:
                return events.loop_blocked(
                    origin,
                    end,
                    duration_ns=elapsed,
                    started_ns=started,
                    held_by=held_by,
                    threshold_ns=self.loop_block_threshold_ns,
                    culprit=culprit_name,
                    cause=cause.cause if cause else None,
                    gil_thread=cause.gil_thread if cause else None,
                    gil_request=self._request_id_on(gil_ident, recording, started),
                    cpu_ns=cpu,
                    stack=stack,
                )

            if culprit is not None:
                origin = culprit.origin(location=location)
                # The stalled callback was a step of the request's task, when it was one.
                owner = getattr(getattr(handle, "_callback", None), "__self__", None)
                if isinstance(owner, asyncio.Task):
                    origin["task"] = owner.get_name()
                culprit.emit(stall(origin, culprit.recording))
                return
            # The loop was held by code no traced request was running: every request
            # waiting on this loop was delayed, so each of their recordings hears of it.
            waiting = self._in_flight.get(ident, set())
            thread = threading.current_thread().name
            for recording in {request.recording for request in list(waiting)}:
                recording.append(stall(events.origin(None, None, thread, location), recording))
        except Exception:
            self._failed()

    # -- who ran where (for the watchdog) ------------------------------------------------

    def _call_in_progress(self, ident: int, frame: FrameType) -> tuple[str, int, int] | None:
        """The call a traced frame on thread ``ident`` has made and the instrumentation has
        not seen end: its name, when it began, and the offset of its CALL instruction."""
        for request in list(self._in_flight.get(ident, ())):
            state = request.frames.get(id(frame))
            if state is not None:
                name, began, offset = state.call_name, state.call_started_ns, state.call_offset
                return (name, began, offset) if name is not None else None
        return None

    def _request_on(self, ident: int, since_ns: int = 0) -> RequestTrace | None:
        """The traced request thread ``ident`` works for now (or worked for, computing,
        since ``since_ns``), if that can be told."""
        slot = self.watchdog.slot_of(ident)
        handle = slot.handle if slot is not None and slot.started_ns else None
        context = getattr(handle, "_context", None)
        if context is not None:
            request = context.get(current_request)
            if request is not None:
                return request  # type: ignore[no-any-return]
        found = request_of_thread(sys._current_frames().get(ident), current_request)
        if isinstance(found, RequestTrace):
            return found
        seen = self.watchdog.recent_work(ident, since_ns)
        if isinstance(seen, RequestTrace):
            return seen
        return self._thread_requests.get(ident)

    def _request_id_on(self, ident: int | None, recording: Any, since_ns: int = 0) -> str | None:
        """The id of the request thread ``ident`` works for, if it is one of ``recording``'s
        (another recording's ids would name the wrong request)."""
        if ident is None:
            return None
        try:
            request = self._request_on(ident, since_ns)
        except Exception:
            self._failed()
            return None
        return request.id if request is not None and request.recording is recording else None


def _type_name(error: object) -> str:
    return type(error).__name__


_active: Instrumentation | None = None


def _claim_tool_id() -> int:
    # Ids 3 and 4 have no assigned role; fall back to the others if a debugger or
    # profiler is not using them.
    for tool_id in (3, 4, 2, 1, 0, 5):
        if _monitoring.get_tool(tool_id) is None:
            _monitoring.use_tool_id(tool_id, TOOL_NAME)
            return tool_id
    raise RuntimeError("every sys.monitoring tool id is in use")


def _callable_name(called: object, caller_module: str | None) -> str:
    """``module.qualname`` of what was called; just the qualname for builtins and for
    functions of the caller's own module."""
    try:
        module = getattr(called, "__module__", None)
        name = getattr(called, "__qualname__", None) or type(called).__qualname__
        if not isinstance(module, str) or module in ("builtins", caller_module):
            return str(name)
        return f"{module}.{name}"
    except Exception:
        return type(called).__qualname__


def _source_at(code: CodeType, offset: int) -> str:
    positions = list(code.co_positions())
    index = offset // 2
    if index >= len(positions):
        return ""
    line, end_line, column, end_column = positions[index]
    lines = linecache.getlines(code.co_filename)
    if line is None or column is None or end_column is None or not lines:
        return ""
    end_line = end_line or line
    if end_line == line:
        text = lines[line - 1][column:end_column]
    else:
        middle = lines[line : end_line - 1]
        text = " ".join([lines[line - 1][column:], *middle, lines[end_line - 1][:end_column]])
    # One line, as a person would write it: no line-break spaces inside brackets.
    text = " ".join(text.split())
    text = re.sub(r"([(\[{]) ", r"\1", text)
    text = re.sub(r",? ([)\]}])", r"\1", text)
    return text.removeprefix("await ").strip()
