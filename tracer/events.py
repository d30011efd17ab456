"""The event kinds a trace is made of, and the trace document that carries them.

This module is the public contract described in docs/trace-format.md: change both together.
"""

from __future__ import annotations

from typing import Any

FORMAT = "django-async-visualizer.trace"
FORMAT_VERSION = 1

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
)

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
