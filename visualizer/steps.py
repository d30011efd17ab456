"""Turn a trace document into what a person reads: execution-table rows and the variable
tracker. The CLI prints them as text; the pages render the same rows as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracer import events as kinds

NOT_SET = "—"


@dataclass(frozen=True)
class Step:
    number: int
    request: str | None
    kind: str
    action: str
    awaited: str
    blocking: str
    since_request_ms: float | None
    thread: str
    line: int | None
    event: dict[str, Any]


def whole_number(raw: object) -> int | None:
    """A non-negative whole number written in ASCII digits (str.isdigit alone also takes
    characters such as "²", which int() refuses), or None."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return int(raw)
    return None


def ms(nanoseconds: int) -> str:
    value = nanoseconds / 1_000_000
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def steps_from_trace(document: dict[str, Any]) -> list[Step]:
    """One step per recorded event, in recorded order."""
    received = {request["id"]: request["received_ns"] for request in document["requests"]}
    return step_rows(document["events"], received)


def step_rows(
    events: list[dict[str, Any]], received: dict[str, int], first_received: int | None = None
) -> list[Step]:
    """Steps for these events (numbered by their seq); times count from each event's
    request's arrival (from the first arrival of the trace for events of no request)."""
    if first_received is None:
        first_received = min(received.values(), default=None)
    steps = []
    for event in events:
        origin = received.get(event["request"], first_received)
        action, awaited, blocking = describe(event)
        steps.append(
            Step(
                number=event["seq"],
                request=event["request"],
                kind=event["kind"],
                action=action,
                awaited=awaited,
                blocking=blocking,
                since_request_ms=(event["t_ns"] - origin) / 1_000_000
                if origin is not None
                else None,
                thread=event["thread"],
                line=event["line"],
                event=event,
            )
        )
    return steps


def describe(event: dict[str, Any]) -> tuple[str, str, str]:
    """The action, what is awaited, and the blocking behaviour of one event, in words."""
    kind = event["kind"]
    if kind == kinds.REQUEST_RECEIVED:
        query = f"?{event['query']}" if event.get("query") else ""
        return f"Request received: {event['method']} {event['path']}{query}", NOT_SET, NOT_SET
    if kind == kinds.VIEW_TYPE_CHECKED:
        if event["is_async"]:
            return (
                f"Django checks the view: {event['function']} is async def, so it runs "
                "on the event loop",
                NOT_SET,
                NOT_SET,
            )
        where = (
            f"hands it to {event['adapter']} to run in a worker thread"
            if event["runs_on"] == "worker_thread"
            else "calls it in the request's thread"
        )
        return (
            f"Django checks the view: {event['function']} is a plain def, so Django {where}",
            (NOT_SET),
            NOT_SET,
        )
    if kind == kinds.THREAD_HANDOFF:
        return (
            f"Handed from {event['from_thread']} to worker thread {event['to_thread']} "
            f"(waited {ms(event['waited_ns'])})",
            NOT_SET,
            "The event loop stays free; this request now needs a thread of its own",
        )
    if kind == kinds.VIEW_STARTED:
        task = f", task {event['task']}" if event["task"] else ""
        return f"View {event['function']} starts on {event['thread']}{task}", NOT_SET, NOT_SET
    if kind == kinds.AWAIT_SUSPENDED:
        return (
            f"Pauses at line {event['line']}: await {event['awaiting']}",
            event["awaiting"],
            "Does not block: the event loop runs other requests meanwhile",
        )
    if kind == kinds.AWAIT_RESUMED:
        pauses = event.get("suspensions", 1)
        detail = f", off the loop {pauses} times" if pauses > 1 else ""
        return (
            f"Resumes after waiting {ms(event['duration_ns'])}{detail}",
            event["awaiting"],
            NOT_SET,
        )
    if kind == kinds.CALL_BLOCKING:
        doing = "waiting" if event["waiting"] else "computing"
        held = (
            "Blocks the event loop: no other request can run"
            if event["on_event_loop"]
            else f"Blocks {event['thread']} only; other requests go on"
        )
        return (
            f"Line {event['line']}: {event['callable']}() holds {event['thread']} for "
            f"{ms(event['duration_ns'])} ({doing}, {ms(event['cpu_ns'])} of CPU)",
            NOT_SET,
            held,
        )
    if kind == kinds.LOOP_BLOCKED:
        culprit = (
            f" by {event['held_by']}()" if event.get("held_by") else " outside the traced views"
        )
        where = f" at line {event['line']}" if event["line"] else ""
        return (
            f"Event loop stalled for {ms(event['duration_ns'])}{culprit}{where}",
            NOT_SET,
            "Every request on this event loop waited",
        )
    if kind == kinds.VIEW_RETURNED:
        return f"View returns {event['returned']}", NOT_SET, NOT_SET
    if kind == kinds.RESPONSE_STARTED:
        return f"Response starts: status {event['status']}", NOT_SET, NOT_SET
    if kind == kinds.RESPONSE_FINISHED:
        return (
            f"Response sent: {event['bytes']} bytes, {ms(event['duration_ns'])} after the "
            "request arrived",
            NOT_SET,
            NOT_SET,
        )
    return kind, NOT_SET, NOT_SET


@dataclass(frozen=True)
class TrackerColumn:
    label: str
    step: int
    values: dict[str, str]
    changed: frozenset[str]


def variable_tracker(events: list[dict[str, Any]], request_id: str) -> list[TrackerColumn]:
    """The view's variables for one request: at the start, after each step that changed
    one, and when the view returned. ``events`` in seq order; others' events are skipped."""
    columns: list[TrackerColumn] = []
    previous: dict[str, str] | None = None
    started = False
    for event in events:
        if event["request"] != request_id:
            continue
        started = started or event["kind"] == kinds.VIEW_STARTED
        if not started:
            continue
        values = event["locals"]
        number = event["seq"]
        if event["kind"] == kinds.VIEW_STARTED:
            label = "Start"
        elif event["kind"] == kinds.VIEW_RETURNED:
            label = "Final"
        elif values != previous:
            label = f"After step {number}"
        else:
            continue
        changed = frozenset(
            name for name in values if previous is not None and previous.get(name) != values[name]
        )
        columns.append(TrackerColumn(label, number, dict(values), changed))
        previous = values
        if event["kind"] == kinds.VIEW_RETURNED:
            break
    return columns


def tracker_variables(columns: list[TrackerColumn]) -> list[str]:
    names: dict[str, None] = {}
    for column in columns:
        names.update(dict.fromkeys(column.values))
    return list(names)


def render_text(document: dict[str, Any], width: int = 60) -> str:
    """The execution table and each request's variable tracker as plain text."""
    steps = steps_from_trace(document)
    lines = [
        f"Execution table ({document['scenario']['slug'] if document['scenario'] else '?'}"
        f", {len(document['requests'])} request(s))"
    ]
    table: list[tuple[str, ...]] = [
        ("Step", "Req", "Time", "Action", "Awaits", "Blocking behaviour")
    ]
    for step in steps:
        time_text = f"{step.since_request_ms:.1f} ms" if step.since_request_ms is not None else ""
        table.append(
            (
                str(step.number),
                step.request or "",
                time_text,
                step.action,
                step.awaited,
                step.blocking,
            )
        )
    lines += _format_table(table, width)
    for request in document["requests"]:
        columns = variable_tracker(document["events"], request["id"])
        if not columns:
            continue
        lines += ["", f"Variable tracker ({request['id']}: {request['url']})"]
        rows: list[tuple[str, ...]] = [("Variable", *(column.label for column in columns))]
        for name in tracker_variables(columns):
            rows.append(
                (
                    name,
                    *(
                        ("*" if name in column.changed else "") + column.values.get(name, NOT_SET)
                        for column in columns
                    ),
                )
            )
        lines += _format_table(rows, 36)
    lines += ["", "* the value changed in that step"]
    return "\n".join(lines)


def _format_table(rows: list[tuple[str, ...]], width: int) -> list[str]:
    clipped = [tuple(_clip(cell, width) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in clipped) for i in range(len(clipped[0]))]
    out = []
    for index, row in enumerate(clipped):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
