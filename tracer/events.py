"""The event kinds a trace is made of, and the trace document that carries them.

This module is the public contract described in docs/trace-format.md: change both together.
"""

from __future__ import annotations

from typing import Any

FORMAT = "django-async-visualizer.trace"
FORMAT_VERSION = 2
# Older versions this tool still reads: every version-1 document is a valid version-2 one.
READABLE_VERSIONS = (1, 2)

REQUEST_RECEIVED = "request.received"
VIEW_TYPE_CHECKED = "view.type_checked"
THREAD_HANDOFF = "thread.handoff"
VIEW_STARTED = "view.started"
AWAIT_SUSPENDED = "await.suspended"
AWAIT_RESUMED = "await.resumed"
CALL_BLOCKING = "call.blocking"
LOOP_BLOCKED = "loop.blocked"
VIEW_RETURNED = "view.returned"
RESPONSE_STARTED = "response.started"
RESPONSE_FINISHED = "response.finished"
# Version 2.
THREAD_HOP = "thread.hop"
AWAIT_RAISED = "await.raised"

KINDS = (
    REQUEST_RECEIVED,
    VIEW_TYPE_CHECKED,
    THREAD_HANDOFF,
    VIEW_STARTED,
    AWAIT_SUSPENDED,
    AWAIT_RESUMED,
    CALL_BLOCKING,
    LOOP_BLOCKED,
    VIEW_RETURNED,
    RESPONSE_STARTED,
    RESPONSE_FINISHED,
    THREAD_HOP,
    AWAIT_RAISED,
)

# Why a thread was slow, for call.blocking and loop.blocked (the ``cause`` field).
CAUSE_COMPUTING = "computing"  # the thread itself used the CPU
CAUSE_WAITING = "waiting"  # it waited for something outside Python (sleep, network, disk)
CAUSE_GIL = "gil"  # it waited for the GIL while another thread of the process computed
# It was ready to run but waited for a CPU core most of the time, computing next to
# nothing: the machine was busy with other work (another process), not this code.
CAUSE_PREEMPTED = "preempted"
CAUSES = (CAUSE_COMPUTING, CAUSE_WAITING, CAUSE_GIL, CAUSE_PREEMPTED)

# What a thread.hop ran (the ``purpose`` field).
HOP_REQUEST_STARTED = "request_started"  # Django's request_started signal receivers
HOP_VIEW = "view"  # the view itself (a def view under ASGI, an async view under WSGI)
HOP_RESPONSE_CLOSE = "response_close"  # response.close(), with request_finished receivers
HOP_DATABASE = "database"  # an ORM call made through sync_to_async (acount(), afirst(), ...)
HOP_OTHER = "other"
HOP_PURPOSES = (HOP_REQUEST_STARTED, HOP_VIEW, HOP_RESPONSE_CLOSE, HOP_DATABASE, HOP_OTHER)

# How a hop crossed threads (the ``adapter`` field of thread.hop).
ADAPTER_SYNC_TO_ASYNC = "sync_to_async"  # async code awaited sync code run in a thread
ADAPTER_ASYNC_TO_SYNC = "async_to_sync"  # sync code waited for a coroutine on a private loop
ADAPTER_TO_THREAD = "to_thread"  # asyncio.to_thread / loop.run_in_executor from the view

# Fields every event has, in the order they are written.
COMMON_FIELDS = (
    "seq",
    "t_ns",
    "kind",
    "request",
    "task",
    "thread",
    "file",
    "function",
    "line",
    "locals",
)

Event = dict[str, Any]


def trace_document(
    *,
    recording_id: str,
    scenario: dict[str, Any] | None,
    server: dict[str, Any],
    tracer: dict[str, Any],
    recorded_at: str,
    requests: list[dict[str, Any]],
    events: list[Event],
) -> dict[str, Any]:
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
