"""The event kinds a trace is made of, and the trace document that carries them, as types.

This module is the public contract described in docs/trace-format.md: change both together.
Each kind is a TypedDict and has one constructor (``view_started(...) -> ViewStarted``);
events stay plain dicts at run time, so recording them and writing them as JSON cost what
a dict costs. tracer/validation.py derives its checks of an imported document from these
types, so a field is declared here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, NotRequired, TypedDict, get_args, get_type_hints

FORMAT: Final = "django-async-visualizer.trace"
FORMAT_VERSION: Final = 3
# Older versions this tool still reads: every version-1 or version-2 document is a valid
# version-3 one.
READABLE_VERSIONS = (1, 2, 3)

REQUEST_RECEIVED: Final = "request.received"
VIEW_TYPE_CHECKED: Final = "view.type_checked"
THREAD_HANDOFF: Final = "thread.handoff"
VIEW_STARTED: Final = "view.started"
AWAIT_SUSPENDED: Final = "await.suspended"
AWAIT_RESUMED: Final = "await.resumed"
CALL_BLOCKING: Final = "call.blocking"
LOOP_BLOCKED: Final = "loop.blocked"
VIEW_RETURNED: Final = "view.returned"
RESPONSE_STARTED: Final = "response.started"
RESPONSE_FINISHED: Final = "response.finished"
# Version 2.
THREAD_HOP: Final = "thread.hop"
AWAIT_RAISED: Final = "await.raised"

# Why a thread was slow, for call.blocking and loop.blocked (the ``cause`` field).
Cause = Literal["computing", "waiting", "gil", "preempted"]
CAUSE_COMPUTING: Final = "computing"  # the thread itself used the CPU
CAUSE_WAITING: Final = "waiting"  # it waited for something outside Python (sleep, network, disk)
CAUSE_GIL: Final = "gil"  # it waited for the GIL while another thread of the process computed
# It was ready to run but waited for a CPU core most of the time, computing next to
# nothing: the machine was busy with other work (another process), not this code.
CAUSE_PREEMPTED: Final = "preempted"
CAUSES: tuple[Cause, ...] = get_args(Cause)

# What a thread.hop ran (the ``purpose`` field).
HopPurpose = Literal["request_started", "view", "response_close", "database", "other"]
HOP_REQUEST_STARTED: Final = "request_started"  # Django's request_started signal receivers
HOP_VIEW: Final = "view"  # the view itself (a def view under ASGI, an async view under WSGI)
HOP_RESPONSE_CLOSE: Final = "response_close"  # response.close(), with request_finished receivers
HOP_DATABASE: Final = "database"  # an ORM call made through sync_to_async (acount(), ...)
HOP_OTHER: Final = "other"
HOP_PURPOSES: tuple[HopPurpose, ...] = get_args(HopPurpose)

# How a hop crossed threads (the ``adapter`` field of thread.hop).
HopAdapter = Literal["sync_to_async", "async_to_sync", "to_thread"]
ADAPTER_SYNC_TO_ASYNC: Final = "sync_to_async"  # async code awaited sync code in a thread
ADAPTER_ASYNC_TO_SYNC: Final = "async_to_sync"  # sync code waited for a coroutine on a private loop
ADAPTER_TO_THREAD: Final = "to_thread"  # asyncio.to_thread / loop.run_in_executor from the view


# -- the fields every event has -------------------------------------------------------


class Origin(TypedDict):
    """Where an event happened: the fields every event has besides ``seq``, ``t_ns`` and
    ``kind``. The recorder fills them in (RequestTrace.origin)."""

    request: str | None
    task: str | None
    thread: str
    file: str | None
    function: str | None
    line: int | None
    locals: dict[str, str]


class _Numbered(TypedDict):
    seq: int
    t_ns: int


class _Common(_Numbered, Origin):
    """Every event: ``seq``, ``t_ns``, its ``kind`` (declared by each kind, as a literal, so
    that ``event["kind"] == VIEW_STARTED`` tells a type checker which kind it is), then
    the fields of its origin."""


def origin(
    request: str | None,
    task: str | None,
    thread: str,
    location: tuple[str | None, str | None, int | None] | None = None,
) -> Origin:
    """The origin of an event with no locals to show: one outside the view's code (a hop,
    a stall no traced request caused), at ``location`` if given."""
    file, function, line = location or (None, None, None)
    return {
        "request": request,
        "task": task,
        "thread": thread,
        "file": file,
        "function": function,
        "line": line,
        "locals": {},
    }


# -- the kinds, in the order of docs/trace-format.md ----------------------------------


class RequestReceived(_Common):
    kind: Literal["request.received"]
    method: str
    path: str
    query: str


class ViewTypeChecked(_Common):
    kind: Literal["view.type_checked"]
    view: str
    is_async: bool
    handler: str
    runs_on: str
    adapter: str | None


class ThreadHandoff(_Common):
    kind: Literal["thread.handoff"]
    from_thread: str
    to_thread: str
    waited_ns: int


class ViewStarted(_Common):
    kind: Literal["view.started"]


class AwaitSuspended(_Common):
    kind: Literal["await.suspended"]
    awaiting: str


class _AwaitEnded(_Common):
    awaiting: str
    duration_ns: int
    off_loop_ns: int
    suspensions: int


class AwaitResumed(_AwaitEnded):
    kind: Literal["await.resumed"]


class AwaitRaised(_AwaitEnded):
    kind: Literal["await.raised"]
    exception: str


class CallBlocking(_Common):
    kind: Literal["call.blocking"]
    callable: str
    duration_ns: int
    cpu_ns: int
    waiting: bool
    on_event_loop: bool
    # Since version 2.
    cause: NotRequired[Cause]
    gil_thread: NotRequired[str | None]
    gil_request: NotRequired[str | None]


class StackFrame(TypedDict):
    """One frame of loop.blocked's ``stack``."""

    file: str
    function: str
    line: int | None


class LoopBlocked(_Common):
    kind: Literal["loop.blocked"]
    duration_ns: int
    started_ns: int
    held_by: str | None
    threshold_ns: int
    # Since version 2.
    cause: NotRequired[Cause | None]
    cpu_ns: NotRequired[int | None]
    gil_thread: NotRequired[str | None]
    gil_request: NotRequired[str | None]
    culprit: NotRequired[str | None]
    stack: NotRequired[list[StackFrame]]


class ViewReturned(_Common):
    kind: Literal["view.returned"]
    returned: str


class ResponseStarted(_Common):
    kind: Literal["response.started"]
    status: int


class ResponseFinished(_Common):
    kind: Literal["response.finished"]
    status: int | None
    bytes: int
    duration_ns: int


class ThreadHop(_Common):
    kind: Literal["thread.hop"]
    adapter: HopAdapter
    purpose: HopPurpose
    target: str
    from_thread: str
    to_thread: str
    started_ns: int
    duration_ns: int
    cpu_ns: int
    thread_new: bool
    # Absent in traces recorded before the tracer kept it.
    called_ns: NotRequired[int]


# Any event. ``event["kind"] == AWAIT_RESUMED`` narrows it to AwaitResumed.
Event = (
    RequestReceived
    | ViewTypeChecked
    | ThreadHandoff
    | ViewStarted
    | AwaitSuspended
    | AwaitResumed
    | CallBlocking
    | LoopBlocked
    | ViewReturned
    | ResponseStarted
    | ResponseFinished
    | ThreadHop
    | AwaitRaised
)


def _kind_of(event_type: type) -> str:
    kind: str = get_args(get_type_hints(event_type)["kind"])[0]
    return kind


# Each kind's type, by its name (the value of ``kind``), in the order of Event.
KIND_TYPES: dict[str, type] = {_kind_of(member): member for member in get_args(Event)}
KINDS = tuple(KIND_TYPES)


# -- the constructors: the recorder and the instrumentation build events only with these --


def request_received(
    origin: Origin, t_ns: int, *, method: str, path: str, query: str
) -> RequestReceived:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": REQUEST_RECEIVED,
        **origin,
        "method": method,
        "path": path,
        "query": query,
    }


def view_type_checked(
    origin: Origin,
    t_ns: int,
    *,
    view: str,
    is_async: bool,
    handler: str,
    runs_on: str,
    adapter: str | None,
) -> ViewTypeChecked:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": VIEW_TYPE_CHECKED,
        **origin,
        "view": view,
        "is_async": is_async,
        "handler": handler,
        "runs_on": runs_on,
        "adapter": adapter,
    }


def thread_handoff(
    origin: Origin, t_ns: int, *, from_thread: str, to_thread: str, waited_ns: int
) -> ThreadHandoff:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": THREAD_HANDOFF,
        **origin,
        "from_thread": from_thread,
        "to_thread": to_thread,
        "waited_ns": waited_ns,
    }


def view_started(origin: Origin, t_ns: int) -> ViewStarted:
    return {"seq": 0, "t_ns": t_ns, "kind": VIEW_STARTED, **origin}


def await_suspended(origin: Origin, t_ns: int, *, awaiting: str) -> AwaitSuspended:
    return {"seq": 0, "t_ns": t_ns, "kind": AWAIT_SUSPENDED, **origin, "awaiting": awaiting}


def await_resumed(
    origin: Origin,
    t_ns: int,
    *,
    awaiting: str,
    duration_ns: int,
    off_loop_ns: int,
    suspensions: int,
) -> AwaitResumed:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": AWAIT_RESUMED,
        **origin,
        "awaiting": awaiting,
        "duration_ns": duration_ns,
        "off_loop_ns": off_loop_ns,
        "suspensions": suspensions,
    }


def await_raised(
    origin: Origin,
    t_ns: int,
    *,
    awaiting: str,
    duration_ns: int,
    off_loop_ns: int,
    suspensions: int,
    exception: str,
) -> AwaitRaised:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": AWAIT_RAISED,
        **origin,
        "awaiting": awaiting,
        "duration_ns": duration_ns,
        "off_loop_ns": off_loop_ns,
        "suspensions": suspensions,
        "exception": exception,
    }


def call_blocking(
    origin: Origin,
    t_ns: int,
    *,
    callable: str,
    duration_ns: int,
    cpu_ns: int,
    waiting: bool,
    on_event_loop: bool,
    cause: Cause,
    gil_thread: str | None,
    gil_request: str | None,
) -> CallBlocking:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": CALL_BLOCKING,
        **origin,
        "callable": callable,
        "duration_ns": duration_ns,
        "cpu_ns": cpu_ns,
        "waiting": waiting,
        "on_event_loop": on_event_loop,
        "cause": cause,
        "gil_thread": gil_thread,
        "gil_request": gil_request,
    }


def stack_frame(file: str, function: str, line: int | None) -> StackFrame:
    return {"file": file, "function": function, "line": line}


def loop_blocked(
    origin: Origin,
    t_ns: int,
    *,
    duration_ns: int,
    started_ns: int,
    held_by: str | None,
    threshold_ns: int,
    culprit: str | None,
    cause: Cause | None,
    gil_thread: str | None,
    gil_request: str | None,
    cpu_ns: int | None = None,
    stack: list[StackFrame] | None = None,
) -> LoopBlocked:
    """``cpu_ns`` and ``stack`` are left out when not known (the loop thread's CPU was not
    measured; no sample of its stack was taken)."""
    # The origin spelled out: mypy does not let a TypedDict with keys left out (cpu_ns,
    # stack) be built from a ** item.
    event: LoopBlocked = {
        "seq": 0,
        "t_ns": t_ns,
        "kind": LOOP_BLOCKED,
        "request": origin["request"],
        "task": origin["task"],
        "thread": origin["thread"],
        "file": origin["file"],
        "function": origin["function"],
        "line": origin["line"],
        "locals": origin["locals"],
        "duration_ns": duration_ns,
        "started_ns": started_ns,
        "held_by": held_by,
        "threshold_ns": threshold_ns,
        "culprit": culprit,
        "cause": cause,
        "gil_thread": gil_thread,
        "gil_request": gil_request,
    }
    if cpu_ns is not None:
        event["cpu_ns"] = cpu_ns
    if stack is not None:
        event["stack"] = stack
    return event


def view_returned(origin: Origin, t_ns: int, *, returned: str) -> ViewReturned:
    return {"seq": 0, "t_ns": t_ns, "kind": VIEW_RETURNED, **origin, "returned": returned}


def response_started(origin: Origin, t_ns: int, *, status: int) -> ResponseStarted:
    return {"seq": 0, "t_ns": t_ns, "kind": RESPONSE_STARTED, **origin, "status": status}


def response_finished(
    origin: Origin, t_ns: int, *, status: int | None, bytes: int, duration_ns: int
) -> ResponseFinished:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": RESPONSE_FINISHED,
        **origin,
        "status": status,
        "bytes": bytes,
        "duration_ns": duration_ns,
    }


def thread_hop(
    origin: Origin,
    t_ns: int,
    *,
    adapter: HopAdapter,
    purpose: HopPurpose,
    target: str,
    from_thread: str,
    to_thread: str,
    started_ns: int,
    duration_ns: int,
    cpu_ns: int,
    thread_new: bool,
    called_ns: int,
) -> ThreadHop:
    return {
        "seq": 0,
        "t_ns": t_ns,
        "kind": THREAD_HOP,
        **origin,
        "adapter": adapter,
        "purpose": purpose,
        "target": target,
        "from_thread": from_thread,
        "to_thread": to_thread,
        "started_ns": started_ns,
        "duration_ns": duration_ns,
        "cpu_ns": cpu_ns,
        "thread_new": thread_new,
        "called_ns": called_ns,
    }


# -- the document ---------------------------------------------------------------------


class ScenarioInfo(TypedDict):
    """What the traced view was registered with (a built-in scenario's slug and title)."""

    slug: str
    title: str


def scenario_info(registered: Mapping[str, object]) -> ScenarioInfo | None:
    """The document's ``scenario`` for a view registered with ``registered``: its slug and
    title, or None for a view registered without them."""
    slug, title = registered.get("slug"), registered.get("title")
    if isinstance(slug, str) and isinstance(title, str):
        return {"slug": slug, "title": title}
    return None


class CodeError(TypedDict):
    """An error the edited code ran into: where in its text (None: not at a line of it)
    and what it was (``MemoryError``, ``PermissionError: [Errno 1] …``)."""

    line: int | None
    message: str


class EditedCode(TypedDict):
    """The code that ran, in a run of a view someone edited (the playground, version 3):
    the module's text as it ran, the name of its file as the events' ``file`` ends, the
    view's function name in it, the errors the run reported, and what stopped it, if a
    limit did before it finished."""

    file: str
    view: str
    text: str
    errors: list[CodeError]
    stopped: NotRequired[str]


class RequestSummary(TypedDict):
    """One request, as listed in the document's ``requests``."""

    id: str
    method: str
    url: str
    view: str | None
    status: int | None
    bytes: int
    received_ns: int
    finished_ns: int | None
    duration_ns: int | None
    # When the server wrote the response's last byte to the socket (Daphne, this app's).
    sent_ns: NotRequired[int]
    # Added by the client that sent a run's requests.
    client_ref: NotRequired[str | None]
    client_sent_ns: NotRequired[int | None]
    client_done_ns: NotRequired[int | None]
    # Absent in traces recorded before the tracer measured its own time.
    tracer_ns: NotRequired[int]
    # Its task on the event loop (ASGI), absent in older traces: time running, time ready
    # but waiting for the loop, and each step as [ready_ns, started_ns, ended_ns].
    loop_ns: NotRequired[int]
    loop_wait_ns: NotRequired[int]
    loop_steps: NotRequired[list[list[int]]]


# ``server`` and ``tracer`` are free-form JSON objects (docs/trace-format.md lists what
# they hold); an importer only bounds their strings and depth.
JSONObject = dict[str, object]


class TraceDocument(TypedDict):
    format: str
    version: int
    id: str
    recorded_at: str
    clock: str
    scenario: ScenarioInfo | None
    server: JSONObject
    tracer: JSONObject
    requests: list[RequestSummary]
    events: list[Event]
    # Present only when the recording hit its size limit.
    dropped_events: NotRequired[int]
    # [t_ns, OS threads] pairs.
    thread_samples: NotRequired[list[list[int]]]
    # Present only for a run of an edited view (version 3).
    code: NotRequired[EditedCode]


def trace_document(
    *,
    recording_id: str,
    scenario: ScenarioInfo | None,
    server: JSONObject,
    tracer: JSONObject,
    recorded_at: str,
    requests: list[RequestSummary],
    events: list[Event],
) -> TraceDocument:
    """Assemble one recording as the versioned JSON document of docs/trace-format.md."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "id": recording_id,
        "recorded_at": recorded_at,
        "clock": "monotonic_ns",
        "scenario": scenario,
        "server": server,
        "tracer": tracer,
        "requests": requests,
        "events": events,
    }
