"""The Django glue: settings, the ASGI wrapper that sees requests arrive and responses
leave, and the view middleware that records Django's view-type check.

Everything else in ``tracer`` is plain Python and knows nothing of Django.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import django
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core import signing
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers import base as django_handler
from django.http import HttpRequest, HttpResponseBase

from tracer import events
from tracer.hops import PendingHops, pending_hops, sample_threads
from tracer.instrumentation import Instrumentation, registered_info, traced_view_function
from tracer.loop_clock import TaskClock
from tracer.recorder import RecordingStore, RequestTrace, current_request

DEFAULTS: dict[str, Any] = {
    # Off: scenario views run exactly as they would without this project.
    "ENABLED": True,
    # The event loop running nothing else for this long is reported as loop.blocked.
    "LOOP_BLOCK_THRESHOLD_MS": 20,
    # A call from a traced view that keeps its thread this long is a call.blocking. Kept
    # above Python's 5 ms thread switch interval: shorter waits can be a thread merely
    # waiting its turn for the GIL.
    "BLOCKING_CALL_THRESHOLD_MS": 10,
    "MAX_RECORDINGS": 64,
    # True when this process is one of several serving the same runs (WSGI workers).
    "PROCESS_TAG": False,
    "MAX_EVENTS_PER_RECORDING": 200_000,
}

# Requests sent with this header share one recording (for example N concurrent requests).
RECORDING_HEADER = b"x-trace-recording"
# A sender's own name for a request, kept in the trace so it can match its timings to it.
CLIENT_REF_HEADER = b"x-trace-client-ref"
RECORDING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Where stamp_daphne_arrivals() notes, in an HTTP scope's extensions, when Daphne had the
# whole request (CLOCK_MONOTONIC ns).
ARRIVAL_EXTENSION = "tracer.server_received_ns"
# An arrival stamp older than this is not believed (a scope kept and replayed).
MAX_ARRIVAL_AGE_NS = 60 * 1_000_000_000
# Where stamp_daphne_arrivals() puts, in an HTTP scope's extensions, a function
# ``on_written(callback)``: it calls ``callback(t_ns)`` once the connection has written all
# it holds to its socket (Twisted writes on a later turn of the event loop than the one in
# which the application sent its last body).
WRITTEN_EXTENSION = "tracer.on_written"
# A response whose last bytes were not seen written by then is ended without the stamp.
MAX_WRITE_WAIT_S = 2.0
RECORDING_SALT = "tracer.recording"


# Set by configure(): the settings an installing app (async_visualizer) derived from its own.
_configured: dict[str, Any] | None = None


def configure(tracer_settings: dict[str, Any]) -> None:
    """Use ``tracer_settings`` instead of ``settings.TRACER`` (called by an app that has
    settings of its own, before the first request)."""
    global _configured
    _configured = dict(tracer_settings)
    get_config.cache_clear()
    get_tracer.cache_clear()


@functools.cache
def get_config() -> dict[str, Any]:
    """The tracer settings: DEFAULTS overridden by ``settings.TRACER`` (or by configure())."""
    config = dict(DEFAULTS)
    config.update(_configured if _configured is not None else getattr(settings, "TRACER", {}))
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown TRACER settings: {', '.join(sorted(unknown))}")
    return config


class Tracer:
    """The process's instrumentation and recordings, built from the settings."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.instrumentation = Instrumentation(
            loop_block_threshold_ns=int(config["LOOP_BLOCK_THRESHOLD_MS"] * 1_000_000),
            blocking_call_threshold_ns=int(config["BLOCKING_CALL_THRESHOLD_MS"] * 1_000_000),
        )
        self.store = RecordingStore(
            max_recordings=config["MAX_RECORDINGS"],
            max_events=config["MAX_EVENTS_PER_RECORDING"],
            process_tag=f"w{os.getpid()}-" if config["PROCESS_TAG"] else "",
        )

    @property
    def enabled(self) -> bool:
        return self.instrumentation.enabled


@functools.cache
def get_tracer() -> Tracer:
    return Tracer(get_config())


def enable_tracing() -> bool:
    """Instrument the registered views if the settings allow it; True if tracing is on."""
    if not get_config()["ENABLED"]:
        return False
    get_tracer().instrumentation.enable()
    return True


def disable_tracing() -> None:
    get_tracer().instrumentation.disable()


@dataclass
class _Arrival:
    """An HTTP request the server handed to the app, before its view is known."""

    scope: dict[str, Any]
    received_ns: int
    trace: RequestTrace | None = None
    # Thread hops and thread counts from before the view is known (request_started).
    pending: PendingHops = field(default_factory=PendingHops)
    # Under ASGI, the request's task and its time on the event loop.
    task: asyncio.Task[Any] | None = None
    clock: TaskClock | None = None
    # Waiting for the server to write the response's last bytes; the application is done.
    writing: bool = False
    left: bool = False

    def enter(self) -> Callable[[], None]:
        """Make this the current context's arriving request; return what undoes it."""
        arrival_token = _arrival.set(self)
        pending_token = pending_hops.set(self.pending)
        sample_threads(None, self.pending)

        def reset() -> None:
            pending_hops.reset(pending_token)
            _arrival.reset(arrival_token)

        return reset

    def watch_task(self, tracer: Tracer) -> None:
        """Time the request's task on the event loop (tracer/loop_clock.py)."""
        try:
            self.task = asyncio.current_task()
            if self.task is not None:
                self.clock = tracer.instrumentation.loop_clock.watch(self.task, self.received_ns)
        except Exception:
            tracer.instrumentation._failed()

    def leave(self, tracer: Tracer) -> None:
        """The application is done with the request (after response.close())."""
        if self.task is not None:
            tracer.instrumentation.loop_clock.unwatch(self.task)
        if self.trace is not None:
            tracer.instrumentation.request_finished(self.trace)
            self.left = True
            if not self.writing:
                self.trace.end()

    def watch_write(self, tracer: Tracer) -> None:
        """After the last body went to the server: note when the server wrote it to the
        socket (``sent_ns``), if it tells (WRITTEN_EXTENSION). The request ends only then,
        so its summary is complete when it ends."""
        extensions = self.scope.get("extensions")
        on_written = extensions.get(WRITTEN_EXTENSION) if isinstance(extensions, dict) else None
        trace = self.trace
        if not callable(on_written) or trace is None or self.writing:
            return
        self.writing = True

        def written(t_ns: int | None) -> None:
            if not self.writing:
                return
            self.writing = False
            if t_ns is not None and trace.finished_ns is not None and t_ns >= trace.finished_ns:
                trace.sent_ns = t_ns
            if self.left:
                trace.end()

        try:
            asyncio.get_running_loop().call_later(MAX_WRITE_WAIT_S, written, None)
            on_written(written)
        except Exception:
            tracer.instrumentation._failed()
            written(None)


_arrival: ContextVar[_Arrival | None] = ContextVar("traced_arrival", default=None)


class TraceRequests:
    """ASGI middleware: notes when each HTTP request arrives and what the app sends back.

    Wraps Django's ASGI handler from the outside, so ``request.received`` is the moment the
    server called the application and ``response.*`` are the messages the server received.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        tracer = get_tracer()
        if scope["type"] != "http" or not tracer.enabled:
            await self.app(scope, receive, send)
            return
        arrival = _Arrival(scope, _received_ns(scope))
        reset = arrival.enter()
        arrival.watch_task(tracer)

        async def observed_send(message: dict[str, Any]) -> None:
            if arrival.trace is not None:
                _observe_response(arrival.trace, message, tracer)
            await send(message)
            if (
                arrival.trace is not None
                and message.get("type") == "http.response.body"
                and not message.get("more_body", False)
            ):
                arrival.watch_write(tracer)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            reset()
            arrival.leave(tracer)


def stamp_daphne_arrivals() -> None:
    """Have Daphne note in each HTTP scope when it had the whole request, before it starts
    the application for it (idempotent). Under many requests at once the application is
    called for each only when the event loop gets to it: without the stamp a request's
    time would start then, not when it reached the server."""
    from daphne.server import Server

    original = Server.create_application
    if getattr(original, "stamps_arrivals", False):
        return

    @functools.wraps(original)
    def create_application(server: Server, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "http":
            extensions = scope.setdefault("extensions", {})
            extensions[ARRIVAL_EXTENSION] = time.monotonic_ns()
            transport = getattr(getattr(protocol, "channel", None), "transport", None)
            if transport is not None:
                extensions[WRITTEN_EXTENSION] = functools.partial(_on_written, transport)
        return original(server, protocol, scope)

    create_application.stamps_arrivals = True  # type: ignore[attr-defined]
    Server.create_application = create_application


def _buffered(transport: Any) -> bool:
    """Whether a Twisted transport still holds bytes it has not written."""
    return bool(len(transport.dataBuffer) - transport.offset or transport._tempDataLen)


def _on_written(transport: Any, callback: Callable[[int | None], None]) -> None:
    """Call ``callback(t_ns)`` once ``transport`` (a Twisted FileDescriptor) has written all
    it holds; ``callback(None)`` if it cannot tell."""
    try:
        if not _buffered(transport):
            callback(time.monotonic_ns())
            return
        waiting = transport.__dict__.setdefault("_tracer_written", [])
        waiting.append(callback)
        if "doWrite" not in transport.__dict__:
            do_write = type(transport).doWrite

            def doWrite() -> Any:  # Twisted's name
                result = do_write(transport)
                try:
                    if waiting and not _buffered(transport):
                        now = time.monotonic_ns()
                        for pending in waiting[:]:
                            pending(now)
                        waiting.clear()
                except Exception:
                    waiting.clear()
                return result

            transport.doWrite = doWrite
    except Exception:
        callback(None)


def _received_ns(scope: dict[str, Any]) -> int:
    """When the server had the request: Daphne's stamp if it made one, else now (the
    application was just called with it)."""
    now = time.monotonic_ns()
    extensions = scope.get("extensions")
    stamp = extensions.get(ARRIVAL_EXTENSION) if isinstance(extensions, dict) else None
    if type(stamp) is int and 0 <= now - stamp <= MAX_ARRIVAL_AGE_NS:
        return stamp
    return now


class TraceWSGIRequests:
    """WSGI middleware: the same observations as TraceRequests, for a WSGI server.

    Each request runs in a copy of the context, so nothing of one request is left in a
    server thread for the next.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        tracer = get_tracer()
        if not tracer.enabled:
            return self.app(environ, start_response)
        return contextvars.copy_context().run(self._traced, environ, start_response, tracer)

    def _traced(self, environ: dict[str, Any], start_response: Any, tracer: Tracer) -> Any:
        arrival = _Arrival(_scope_of(environ), time.monotonic_ns())
        arrival.enter()

        def observed_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            if arrival.trace is not None:
                message = {"type": "http.response.start", "status": int(status.split()[0])}
                _observe_response(arrival.trace, message, tracer)
            return start_response(status, headers, exc_info)

        body = self.app(environ, observed_start_response)
        trace = arrival.trace
        if trace is None:
            return body
        # The body is read here, so response.finished is recorded before the server sends
        # the last byte (Django's ordinary responses are in memory already).
        try:
            chunks = list(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        _observe_response(trace, {"type": "http.response.body", "body": b"".join(chunks)}, tracer)
        arrival.leave(tracer)
        return chunks


def _scope_of(environ: dict[str, Any]) -> dict[str, Any]:
    """The few ASGI scope keys the tracer reads, from a WSGI environ."""
    headers = []
    for header in (RECORDING_HEADER, CLIENT_REF_HEADER):
        value = environ.get("HTTP_" + header.decode().upper().replace("-", "_"))
        if value:
            headers.append((header, value.encode("latin-1")))
    return {
        "type": "http",
        "interface": "wsgi",
        "method": environ.get("REQUEST_METHOD", "GET"),
        "path": environ.get("PATH_INFO", "/"),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
    }


def _observe_response(trace: RequestTrace, message: dict[str, Any], tracer: Tracer) -> None:
    # Recorded before the message is passed on, so a client that has the whole response
    # can be sure its events are recorded.
    started = time.perf_counter_ns()
    try:
        if message["type"] == "http.response.start":
            status: int = message["status"]
            trace.status = status
            trace.emit(events.response_started(trace.origin(), time.monotonic_ns(), status=status))
        elif message["type"] == "http.response.body":
            trace.bytes_sent += len(message.get("body", b""))
            if not message.get("more_body", False):
                finished = time.monotonic_ns()
                trace.finished_ns = finished
                if trace.loop_clock is not None:
                    trace.loop_clock.until_ns = finished
                trace.emit(
                    events.response_finished(
                        trace.origin(),
                        finished,
                        status=trace.status,
                        bytes=trace.bytes_sent,
                        duration_ns=finished - trace.received_ns,
                    )
                )
                sample_threads(trace)
    except Exception:
        tracer.instrumentation._failed()
    trace.tracer_ns += time.perf_counter_ns() - started


class TraceViewMiddleware:
    """Records Django's view-type check for traced views, just before Django makes it.

    Put it last in MIDDLEWARE, so its ``process_view`` runs right before Django decides
    how to call the view. It works in both handler modes and adds no thread hop.
    """

    sync_capable = True
    async_capable = True
    process_view: Callable[..., Any]

    def __init__(self, get_response: Any) -> None:
        if not get_config()["ENABLED"]:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
            self.process_view = self._process_view_async
        else:
            self.process_view = self._process_view_sync

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    async def _process_view_async(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        _note_view_type_check(request, view, handler_is_async=True)
        return None

    def _process_view_sync(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        _note_view_type_check(request, view, handler_is_async=False)
        return None


def _note_view_type_check(request: HttpRequest, view: Any, *, handler_is_async: bool) -> None:
    arrival = _arrival.get()
    # The function that runs: for a class-based or decorated view, not the closure or
    # wrapper Django calls (tracer/targets.py). Found once: the resolvers run per lookup.
    function = traced_view_function(view, request.method)
    info = registered_info(function) if function is not None else None
    tracer = get_tracer()
    if arrival is not None and info is None:
        # Not a traced view: its hops are not kept (nor those of tasks it starts).
        arrival.pending.close()
    if arrival is None or function is None or info is None or not tracer.enabled:
        return
    started = time.perf_counter_ns()
    try:
        trace = _start_request_trace(tracer, arrival, view, info)
        # The very function Django's handler uses to choose how to call the view.
        is_async = django_handler.iscoroutinefunction(view)  # type: ignore[attr-defined]
        if handler_is_async:
            runs_on = "event_loop" if is_async else "worker_thread"
            adapter = None if is_async else "sync_to_async(thread_sensitive=True)"
        else:
            runs_on = "request_thread_new_event_loop" if is_async else "request_thread"
            adapter = "async_to_sync" if is_async else None
        code = function.__code__
        trace.type_checked_ns = time.monotonic_ns()
        trace.emit(
            events.view_type_checked(
                trace.origin(location=(code.co_filename, code.co_name, code.co_firstlineno)),
                trace.type_checked_ns,
                view=_view_name(view, info),
                is_async=is_async,
                handler="async" if handler_is_async else "sync",
                runs_on=runs_on,
                adapter=adapter,
            )
        )
        current_request.set(trace)
        trace.tracer_ns += time.perf_counter_ns() - started
    except Exception:
        tracer.instrumentation._failed()


def _view_name(view: Any, info: dict[str, Any]) -> str:
    """The traced view's dotted name: as registered (``shop.views.OrderView``), else the
    function's own."""
    name = info.get("view")
    return name if isinstance(name, str) else f"{view.__module__}.{view.__qualname__}"


def _start_request_trace(
    tracer: Tracer, arrival: _Arrival, view: Any, info: dict[str, Any]
) -> RequestTrace:
    scope = arrival.scope
    recording = tracer.store.get_or_create(_recording_id(scope))
    if not recording.requests:
        recording.scenario = events.scenario_info(info)
        recording.server = server_description(scope)
        recording.tracer = {
            "loop_block_threshold_ns": tracer.instrumentation.loop_block_threshold_ns,
            "blocking_call_threshold_ns": tracer.instrumentation.blocking_call_threshold_ns,
        }
    query = scope.get("query_string", b"").decode("latin-1")
    url = scope["path"] + (f"?{query}" if query else "")
    trace = recording.new_request(scope["method"], url, arrival.received_ns)
    trace.view = _view_name(view, info)
    trace.client_ref = _header_id(scope, CLIENT_REF_HEADER)
    trace.ended = False
    arrival.trace = trace
    trace.loop_clock = arrival.clock
    tracer.instrumentation.request_started(trace)
    trace.emit(
        events.request_received(
            trace.origin(),
            arrival.received_ns,
            method=scope["method"],
            path=scope["path"],
            query=query,
        )
    )
    # The hops Django made before the view was known (its request_started receivers).
    arrival.pending.attach(trace)
    return trace


def recording_header_value(recording_id: str) -> str:
    """What a client sends as X-Trace-Recording to have its requests recorded together in
    ``recording_id``: the id signed with the server's secret key. Only who the server gave
    the value to can add requests to that recording; an id alone (a live run's id is in
    every follower's address) is not enough."""
    return signing.Signer(salt=RECORDING_SALT).sign(recording_id)


def _recording_id(scope: dict[str, Any]) -> str:
    """The recording a request belongs to: the one its signed header names, else a new
    one of its own."""
    for name, value in scope.get("headers", []):
        if name == RECORDING_HEADER:
            try:
                candidate = signing.Signer(salt=RECORDING_SALT).unsign(value.decode("latin-1"))
            except signing.BadSignature:
                break
            if RECORDING_ID.fullmatch(candidate):
                return candidate
            break
    return os.urandom(8).hex()


def _header_id(scope: dict[str, Any], header: bytes) -> str | None:
    """A header's value if it is a valid id (letters, digits, _ and -, at most 64)."""
    for name, value in scope.get("headers", []):
        if name == header:
            candidate = str(value.decode("latin-1"))
            if RECORDING_ID.fullmatch(candidate):
                return candidate
    return None


def server_description(scope: dict[str, Any] | None = None) -> dict[str, Any]:
    """What served the request: interface, server software and versions."""
    interface = (scope or {}).get("interface", "asgi")
    if interface != "wsgi":
        return {"interface": interface, **_process_description()}
    description: dict[str, Any] = {"interface": interface, **_process_description()}
    # The gunicorn command line's figures, passed on by whoever started the server.
    for key, variable in (("workers", "TRACE_WSGI_WORKERS"), ("threads", "TRACE_WSGI_THREADS")):
        value = os.environ.get(variable, "")
        if value.isascii() and value.isdigit():
            description[key] = int(value)
    return description


@functools.cache
def _process_description() -> dict[str, Any]:
    # Looking up a package's version reads its metadata from disk: once per process.
    software = None
    for module, package in (("daphne.server", "daphne"), ("gunicorn.app.base", "gunicorn")):
        if module in sys.modules:
            software = f"{package} {metadata.version(package)}"
    return {
        "software": software,
        "python": platform.python_version(),
        "django": django.get_version(),
        "pid": os.getpid(),
        # False on a free-threaded build running without the GIL (3.13t and later).
        "gil_enabled": bool(getattr(sys, "_is_gil_enabled", lambda: True)()),
    }
