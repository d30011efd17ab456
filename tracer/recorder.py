"""Recordings: the events of one run of one or more requests, numbered in the order seen.

A ``Recording`` collects events from any thread; a ``RequestTrace`` is one HTTP request
inside it and is what the instrumentation finds in the current context. The
``RecordingStore`` keeps the latest recordings in memory and tells its listeners (for
example the live page) about every event as it is recorded.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from types import FrameType
from typing import TYPE_CHECKING

from tracer import events
from tracer.safe_repr import safe_repr

if TYPE_CHECKING:
    # The instrumentation's own bookkeeping, which it keeps on the request.
    from tracer.instrumentation import _FrameState
    from tracer.loop_clock import TaskClock

logger = logging.getLogger(__name__)

MAX_LOCALS = 24
# As many thread samples as a trace document may hold (tracer/validation.py).
MAX_THREAD_SAMPLES = 100_000

Listener = Callable[["Recording", events.Event], None]

# The request whose code is running now; asgiref copies it into worker threads.
current_request: ContextVar[RequestTrace | None] = ContextVar("traced_request", default=None)


def snapshot_locals(frame: FrameType | None) -> dict[str, str]:
    """A bounded copy of a frame's local variables, each as a safe repr."""
    if frame is None:
        return {}
    snapshot = {}
    for name, value in list(frame.f_locals.items())[:MAX_LOCALS]:
        snapshot[name] = safe_repr(value)
    return snapshot


def where(thread: threading.Thread | None = None) -> tuple[str | None, str]:
    """The current asyncio task's name (if any) and the current thread's name."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    thread = thread or threading.current_thread()
    return (task.get_name() if task is not None else None), thread.name


class RequestTrace:
    """One HTTP request being traced, from the moment the server hands it to Django."""

    def __init__(
        self, recording: Recording, request_id: str, method: str, url: str, received_ns: int
    ) -> None:
        self.recording = recording
        self.id = request_id
        self.method = method
        self.url = url
        self.received_ns = received_ns
        # The thread the request arrived on; under ASGI it runs the event loop.
        self.thread_id = threading.get_ident()
        self.thread_name = threading.current_thread().name
        self.on_event_loop = asyncio._get_running_loop() is not None
        self.status: int | None = None
        self.bytes_sent = 0
        self.finished_ns: int | None = None
        self.view: str | None = None
        # The sender's own name for the request (X-Trace-Client-Ref), if it gave one.
        self.client_ref: str | None = None
        # Time spent in the tracer's own code on this request's behalf.
        self.tracer_ns = 0
        # When the server wrote the response's last byte to the socket, where it tells.
        self.sent_ns: int | None = None
        self.view_started = False
        # id() of the view's code object, once it started (tracer/instrumentation.py).
        self.view_code: int | None = None
        self.type_checked_ns: int | None = None
        # False while the server glue waits for the application to be done with it (after
        # response.close()'s hop), then True; None when nothing will tell.
        self.ended: bool | None = None
        # Per-frame bookkeeping of the instrumentation, keyed by id(frame).
        self.frames: dict[int, _FrameState] = {}
        # Its task's time on the event loop (tracer/loop_clock.py), under ASGI.
        self.loop_clock: TaskClock | None = None

    def origin(
        self,
        frame: FrameType | None = None,
        location: tuple[str | None, str | None, int | None] | None = None,
    ) -> events.Origin:
        """Where an event of this request happens now: its task and thread, and with a frame
        the view's line (or ``location``) and locals."""
        task, thread = where()
        if location is None and frame is not None:
            location = (frame.f_code.co_filename, frame.f_code.co_name, frame.f_lineno)
        file, function, line = location or (None, None, None)
        # Spelled out rather than events.origin(): one function call less an event.
        return {
            "request": self.id,
            "task": task,
            "thread": thread,
            "file": file,
            "function": function,
            "line": line,
            "locals": snapshot_locals(frame),
        }

    def emit(self, event: events.Event) -> None:
        """Record one event of this request (built by a constructor of tracer.events)."""
        self.recording.append(event)

    def end(self) -> None:
        """The application is done with this request: nothing more will be recorded."""
        self.recording.request_ended(self)

    def summary(self) -> events.RequestSummary:
        """This request as listed in the trace document's ``requests``."""
        finished = self.finished_ns
        summary: events.RequestSummary = {
            "id": self.id,
            "method": self.method,
            "url": self.url,
            "view": self.view,
            "status": self.status,
            "bytes": self.bytes_sent,
            "received_ns": self.received_ns,
            "finished_ns": finished,
            "duration_ns": finished - self.received_ns if finished is not None else None,
            "tracer_ns": self.tracer_ns,
        }
        if self.client_ref is not None:
            summary["client_ref"] = self.client_ref
        if self.sent_ns is not None:
            summary["sent_ns"] = self.sent_ns
        clock = self.loop_clock
        if clock is not None:
            summary["loop_ns"] = clock.run_ns
            summary["loop_wait_ns"] = clock.wait_ns
            summary["loop_steps"] = [list(step) for step in clock.steps]
        return summary


class Recording:
    """The events of one run: one or more requests recorded together."""

    def __init__(self, recording_id: str, store: RecordingStore, max_events: int) -> None:
        self.id = recording_id
        self.store = store
        self.max_events = max_events
        self.recorded_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self.scenario: events.ScenarioInfo | None = None
        self.server: events.JSONObject = {}
        self.tracer: events.JSONObject = {}
        self.requests: list[RequestTrace] = []
        self.events: list[events.Event] = []
        self.dropped_events = 0
        # [t_ns, OS threads of the process] while this recording's requests ran.
        self.thread_samples: list[list[int]] = []
        # Set for a mirror of a recording made in another process: its requests' summaries
        # as that process last sent them (this process has no RequestTrace of them).
        self.mirrored_requests: list[events.RequestSummary] | None = None
        # Set for a run of edited code (the playground): the code that runs, in its document.
        self.code: events.EditedCode | None = None
        self._lock = threading.Lock()
        self._request_ended = threading.Condition(self._lock)

    def mirror_requests(
        self, summaries: list[events.RequestSummary], thread_samples: list[list[int]], dropped: int
    ) -> None:
        """Take the requests, thread samples and dropped-event count of this recording as
        the process that records it sent them (see tracer/sinks.py)."""
        with self._lock:
            self.mirrored_requests = [summary.copy() for summary in summaries]
            self.thread_samples = [list(sample) for sample in thread_samples]
            self.dropped_events = dropped

    def sample_threads(self, t_ns: int, threads: int) -> None:
        """Note the process's OS thread count at ``t_ns`` (only when it changed)."""
        with self._lock:
            if len(self.thread_samples) >= MAX_THREAD_SAMPLES:
                return
            if not self.thread_samples or self.thread_samples[-1][1] != threads:
                self.thread_samples.append([t_ns, threads])

    def new_request(self, method: str, url: str, received_ns: int) -> RequestTrace:
        with self._lock:
            request_id = f"{self.store.process_tag}r{len(self.requests) + 1}"
            request = RequestTrace(self, request_id, method, url, received_ns)
            self.requests.append(request)
        return request

    def request_ended(self, request: RequestTrace) -> None:
        with self._lock:
            request.ended = True
            self._request_ended.notify_all()

    def _closing(self) -> bool:
        """Some request has sent its response but is not done yet: Django still closes
        the response, in a thread hop that ends just after the last byte left."""
        return any(r.finished_ns is not None and r.ended is False for r in self.requests)

    def append(self, event: events.Event) -> None:
        """Number the event and keep it; listeners hear of it in the same order."""
        with self._lock:
            if len(self.events) >= self.max_events:
                self.dropped_events += 1
                return
            event["seq"] = len(self.events) + 1
            self.events.append(event)
            self.store.notify(self, event)

    def document(self, settle_timeout: float = 1.0) -> events.TraceDocument:
        """The recording as a trace document. A client that has its whole response may ask
        at once: off the event loop, this waits (briefly) for responses being closed."""
        with self._lock:
            if asyncio._get_running_loop() is None:
                self._request_ended.wait_for(lambda: not self._closing(), settle_timeout)
            recorded = list(self.events)
            requests = (
                [summary.copy() for summary in self.mirrored_requests]
                if self.mirrored_requests is not None
                else [request.summary() for request in self.requests]
            )
            thread_samples = [list(sample) for sample in self.thread_samples]
        document = events.trace_document(
            # One process's part of a run that several processes served is its own document.
            recording_id=f"{self.id}-{self.store.process_tag.rstrip('-')}"
            if self.store.process_tag
            else self.id,
            scenario=self.scenario,
            server=self.server,
            tracer=self.tracer,
            recorded_at=self.recorded_at,
            requests=requests,
            events=recorded,
        )
        if self.dropped_events:
            document["dropped_events"] = self.dropped_events
        if thread_samples:
            document["thread_samples"] = thread_samples
        if self.code is not None:
            document["code"] = self.code
        return document


class RecordingStore:
    """The most recent recordings, in memory, and the listeners told of each event."""

    def __init__(
        self, max_recordings: int = 64, max_events: int = 200_000, process_tag: str = ""
    ) -> None:
        # Set when several processes serve one run (e.g. "w1234-"): it prefixes request ids
        # and names this process's part of each recording, so the parts can be merged.
        self.process_tag = process_tag
        self.max_recordings = max_recordings
        self.max_events = max_events
        self._recordings: OrderedDict[str, Recording] = OrderedDict()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def get_or_create(self, recording_id: str) -> Recording:
        with self._lock:
            recording = self._recordings.get(recording_id)
            if recording is None:
                recording = Recording(recording_id, self, self.max_events)
                self._recordings[recording_id] = recording
                while len(self._recordings) > self.max_recordings:
                    self._recordings.popitem(last=False)
            return recording

    def get(self, recording_id: str) -> Recording | None:
        with self._lock:
            return self._recordings.get(recording_id)

    def recordings(self) -> list[Recording]:
        """The recordings kept, newest first."""
        with self._lock:
            return list(reversed(self._recordings.values()))

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def notify(self, recording: Recording, event: events.Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(recording, event)
            except Exception:
                # A broken listener must not break the traced request.
                logger.exception("trace listener %r failed", listener)
