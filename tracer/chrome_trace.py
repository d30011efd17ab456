"""Convert a trace document into Chrome Trace Event JSON, which Perfetto
(https://ui.perfetto.dev) and chrome://tracing open.

Tracks (threads, in Chrome's terms): the event loop first, then each worker thread, then
each request. Spans (awaits, blocking calls, loop stalls, views, whole requests) become
complete events ("X"); the other steps become instant events ("i"). Times are in
microseconds from the first moment in the trace.
"""

from __future__ import annotations

from typing import Any

from tracer import events as kinds
from tracer.events import TraceDocument, ViewStarted

PID = 1
# Instant steps of a request, shown on its track.
INSTANT_KINDS = {
    kinds.REQUEST_RECEIVED,
    kinds.VIEW_TYPE_CHECKED,
    kinds.THREAD_HANDOFF,
    kinds.AWAIT_SUSPENDED,
    kinds.RESPONSE_STARTED,
    kinds.RESPONSE_FINISHED,
}


def to_chrome_trace(document: TraceDocument) -> dict[str, Any]:
    """The document in Chrome's format (JSON of its own, hence Any)."""
    events, requests = document["events"], document["requests"]
    starts = [r["received_ns"] for r in requests] + [e["t_ns"] for e in events]
    starts += [
        e["t_ns"] - duration for e in events if isinstance(duration := e.get("duration_ns"), int)
    ]
    origin = min(starts, default=0)

    def us(ns: int) -> float:
        return (ns - origin) / 1000

    loop_thread = next((e["thread"] for e in events if e["task"]), "MainThread")
    threads = sorted({e["thread"] for e in events} - {loop_thread})
    tids: dict[str, int] = {f"thread:{loop_thread}": 1}
    names = {1: f"event loop ({loop_thread})"}
    for thread in threads:
        tids[f"thread:{thread}"] = len(tids) + 1
        names[tids[f"thread:{thread}"]] = f"thread {thread}"
    for summary in requests:
        tids[f"request:{summary['id']}"] = len(tids) + 1
        names[tids[f"request:{summary['id']}"]] = (
            f"request {summary['id']} ({summary['method']} {summary['url']})"
        )

    def thread_tid(thread: str) -> int:
        return tids[f"thread:{thread}"]

    def request_tid(request: str | None) -> int:
        return tids.get(f"request:{request}", 1)

    trace: list[dict[str, Any]] = []

    def span(name: str, tid: int, start_ns: int, end_ns: int, args: dict[str, Any]) -> None:
        trace.append(
            {
                "name": name,
                "ph": "X",
                "pid": PID,
                "tid": tid,
                "ts": us(start_ns),
                "dur": max(end_ns - start_ns, 0) / 1000,
                "args": args,
            }
        )

    last_ns: dict[str | None, int] = {}
    view_started: dict[str | None, ViewStarted] = {}
    for event in events:
        kind, request = event["kind"], event["request"]
        last_ns[request] = event["t_ns"]
        args = {k: v for k, v in event.items() if k != "locals"}
        if kind in INSTANT_KINDS:
            trace.append(
                {
                    "name": kind,
                    "ph": "i",
                    "s": "t",
                    "pid": PID,
                    "tid": request_tid(request),
                    "ts": us(event["t_ns"]),
                    "args": args,
                }
            )
        elif event["kind"] == kinds.VIEW_STARTED:
            view_started[request] = event
        elif event["kind"] == kinds.VIEW_RETURNED and request in view_started:
            started = view_started.pop(request)
            name = f"view {event['function']}"
            view_args = {**args, "locals": event["locals"]}
            span(name, request_tid(request), started["t_ns"], event["t_ns"], view_args)
            span(name, thread_tid(event["thread"]), started["t_ns"], event["t_ns"], view_args)
        elif event["kind"] == kinds.AWAIT_RESUMED:
            name = f"await {event['awaiting']}"
            start = event["t_ns"] - event["duration_ns"]
            span(
                name,
                request_tid(request),
                start,
                event["t_ns"],
                {**args, "locals": event["locals"]},
            )
        elif event["kind"] == kinds.CALL_BLOCKING:
            name = f"{event['callable']}()"
            start = event["t_ns"] - event["duration_ns"]
            span(f"blocking {name}", request_tid(request), start, event["t_ns"], args)
            span(name, thread_tid(event["thread"]), start, event["t_ns"], args)
        elif event["kind"] == kinds.LOOP_BLOCKED:
            held = f" by {event['held_by']}()" if event["held_by"] else ""
            start = event["started_ns"]
            span(
                f"loop blocked{held}",
                thread_tid(event["thread"]),
                start,
                start + event["duration_ns"],
                args,
            )

    for summary in requests:
        end = summary["finished_ns"] or last_ns.get(summary["id"], summary["received_ns"])
        span(
            f"{summary['method']} {summary['url']}",
            request_tid(summary["id"]),
            summary["received_ns"],
            end,
            {"status": summary["status"], "bytes": summary["bytes"], "view": summary["view"]},
        )

    trace.sort(key=lambda item: (item["ts"], item["tid"]))
    metadata: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": PID,
            "tid": 0,
            "args": {"name": _process_name(document)},
        }
    ]
    for tid, name in names.items():
        metadata.append(
            {"name": "thread_name", "ph": "M", "pid": PID, "tid": tid, "args": {"name": name}}
        )
        metadata.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": PID,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    return {
        "traceEvents": metadata + trace,
        "displayTimeUnit": "ms",
        "otherData": {
            "recording": document["id"],
            "scenario": _slug(document),
            "format": document["format"],
            "version": document["version"],
        },
    }


def _process_name(document: TraceDocument) -> str:
    return f"{_slug(document) or 'trace'} recording {document['id']}"


def _slug(document: TraceDocument) -> str | None:
    scenario = document.get("scenario")
    return scenario.get("slug") if scenario else None
