"""Turn a trace document into what a person reads: execution-table rows and the variable
tracker. The CLI prints them as text; the pages render the same rows as HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tracer import events as kinds
from tracer.events import Event, TraceDocument
from visualizer.traces.narration import NOT_SET as NOT_SET
from visualizer.traces.narration import TraceContext, cells, context_of, context_of_document, plural
from visualizer.traces.narration import ms as ms

# For texts of events seen without their trace: nothing known about the server.
UNKNOWN = context_of(None, [])


@dataclass(frozen=True)
class Step:
    number: int
    request: str | None
    kind: str
    action: str
    awaited: str
    blocking: str
    since_request_ms: float | None  # since its own request arrived (None: no request's step)
    since_run_ms: float | None  # since the run began, the same clock for every step
    thread: str
    line: int | None
    event: Event

    @property
    def run_time(self) -> str:
        """Its time since the run began, as the table shows it ("" if not known)."""
        return f"{self.since_run_ms:.1f} ms" if self.since_run_ms is not None else ""

    @property
    def request_time(self) -> str:
        """Its time since its request arrived, as the table shows it."""
        return f"{self.since_request_ms:.1f} ms" if self.since_request_ms is not None else ""


def whole_number(raw: object) -> int | None:
    """A non-negative whole number written in ASCII digits (str.isdigit alone also takes
    characters such as "²", which int() refuses), or None."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return int(raw)
    return None


def steps_from_trace(document: TraceDocument) -> list[Step]:
    """One step per recorded event, in recorded order."""
    received = {request["id"]: request["received_ns"] for request in document["requests"]}
    return step_rows(
        document["events"],
        received,
        run_start_ns(document["requests"]),
        context=context_of_document(document),
    )


def step_rows(
    events: list[Event],
    received: dict[str, int],
    run_start: int | None = None,
    context: TraceContext | None = None,
) -> list[Step]:
    """Steps for these events (numbered by their seq), with two clocks: since the run began
    (``run_start``: the first request sent, run_start_ns) for every step, and since the
    step's own request arrived for the steps of a request. ``context``: the trace's, which
    the texts depend on."""
    steps = []
    for event in events:
        request = event["request"]
        arrived = received.get(request) if request else None
        action, awaited, blocking = describe(event, context)
        steps.append(
            Step(
                number=event["seq"],
                request=event["request"],
                kind=event["kind"],
                action=action,
                awaited=awaited,
                blocking=blocking,
                since_request_ms=_ms_between(arrived, event["t_ns"]),
                since_run_ms=_ms_between(run_start, event["t_ns"]),
                thread=event["thread"],
                line=event["line"],
                event=event,
            )
        )
    return steps


def _ms_between(start: int | None, end: int) -> float | None:
    return (end - start) / 1_000_000 if start is not None else None


def run_start_ns(requests: Iterable[Mapping[str, object]]) -> int | None:
    """When the run began: its first request sent by the client (or, without the client's
    times, taken by the server). The one clock of a whole run."""
    fields = ("client_sent_ns", "received_ns")
    times = [t for r in requests for name in fields if type(t := r.get(name)) is int]
    return min(times, default=None)


def describe(event: Event, context: TraceContext | None = None) -> tuple[str, str, str]:
    """The action, what is awaited, and the blocking behaviour of one event, in words
    (without a context, as much as the event alone tells)."""
    return cells(event, context or UNKNOWN)


@dataclass(frozen=True)
class TrackerColumn:
    label: str
    step: int
    values: dict[str, str]
    changed: frozenset[str]


def variable_tracker(events: list[Event], request_id: str) -> list[TrackerColumn]:
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


def render_text(document: TraceDocument, width: int = 60) -> str:
    """The execution table and each request's variable tracker as plain text."""
    steps = steps_from_trace(document)
    lines = [
        f"Execution table ({document['scenario']['slug'] if document['scenario'] else '?'}"
        f", {plural(len(document['requests']), 'request')})"
    ]
    table: list[tuple[str, ...]] = [
        ("Step", "Req", "Run time", "Req time", "Action", "Awaits", "Blocking behaviour")
    ]
    for step in steps:
        table.append(
            (
                str(step.number),
                step.request or "",
                step.run_time,
                step.request_time,
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
    lines += [
        "",
        "Run time: since the run began (its first request sent); Req time: since the step's "
        "request arrived.",
        "* the value changed in that step",
    ]
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
