"""The state of the player at one step of a recording: what every panel of the scenario page
shows. The live stream, the htmx swaps and the plain page all render from this.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer import events as kinds
from visualizer.scenarios import Scenario
from visualizer.sources import TraceSource
from visualizer.steps import (
    NOT_SET,
    Step,
    TrackerColumn,
    ms,
    step_rows,
    tracker_variables,
    variable_tracker,
)

# The concept flow: (id, label, branch). Branch None is shared by both paths.
FLOW_NODES = (
    ("received", "Request received", None),
    ("check", "Django checks the view type", None),
    ("loop", "async def: runs on the event loop", "async"),
    ("await", "await: pauses, the loop serves others", "async"),
    ("thread", "def: handed to a worker thread", "sync"),
    ("block", "blocking call: the thread waits", "sync"),
    ("returns", "View returns the response", None),
    ("sends", "Response sent", None),
)


@dataclass(frozen=True)
class FlowNode:
    id: str
    label: str
    branch: str | None
    state: str  # current, visited, pending or not-taken


@dataclass(frozen=True)
class SourceLine:
    number: int
    text: str
    current: bool


# How many rows of the execution table are shown on each side of the current step.
TABLE_WINDOW = 50


@dataclass
class PlayerState:
    scenario: Scenario | None
    recording_id: str | None
    rows: list[Step]  # the execution table's rows around the current step
    total: int
    index: int  # 1-based; 0 when there is nothing recorded yet
    current: Step | None
    narration: str
    flow: list[FlowNode]
    source: list[list[SourceLine]]
    tracker_request: str | None = None
    tracker_columns: list[TrackerColumn] = field(default_factory=list)
    tracker_variables: list[str] = field(default_factory=list)

    @property
    def tracker_rows(self) -> list[tuple[str, list[tuple[str, bool]]]]:
        """Each variable with its (value, changed) cell per tracker column."""
        return [
            (
                name,
                [(c.values.get(name, NOT_SET), name in c.changed) for c in self.tracker_columns],
            )
            for name in self.tracker_variables
        ]

    @property
    def rows_hidden_before(self) -> int:
        return self.window_before

    @property
    def rows_hidden_after(self) -> int:
        return self.total - self.rows[-1].number if self.rows else 0

    @property
    def window_before(self) -> int:
        """The last step before the table's rows (0 if the table starts at step 1)."""
        return self.rows[0].number - 1 if self.rows else 0

    @property
    def window_after(self) -> int:
        """The first step after the table's rows."""
        return self.rows[-1].number + 1 if self.rows else 1


def player_state(
    scenario: Scenario | None, source: TraceSource | None, step: int | None
) -> PlayerState:
    """The page's state at ``step`` (1-based, clamped; None means the last step)."""
    total = source.total if source else 0
    index = 0 if not total else total if step is None else max(1, min(step, total))
    if source is None or not index:
        return PlayerState(
            scenario=scenario,
            recording_id=source.recording_id if source else None,
            rows=[],
            total=0,
            index=0,
            current=None,
            narration=NOTHING_YET,
            flow=flow_at(None, []),
            source=source_lines(scenario, None),
        )
    events = source.events_between(index - TABLE_WINDOW, index + TABLE_WINDOW)
    received = source.received_ns({e["request"] for e in events if e["request"]})
    rows = step_rows(events, received, source.first_received_ns())
    current = next(row for row in rows if row.number == index)
    request = current.request or source.first_request()
    history = source.request_events(request, index) if request else []
    columns = variable_tracker(history, request) if request else []
    return PlayerState(
        scenario=scenario,
        recording_id=source.recording_id,
        rows=rows,
        total=total,
        index=index,
        current=current,
        narration=narrate(current, history),
        flow=flow_at(current, history),
        source=source_lines(scenario, current),
        tracker_request=request,
        tracker_columns=columns,
        tracker_variables=tracker_variables(columns),
    )


NOTHING_YET = (
    "Nothing recorded yet. Press Run to send a real request to this view and watch each "
    "step as it happens."
)


def narrate(step: Step, history: list[dict[str, Any]]) -> str:
    """A plain-language account of one step: what happened, and what it means for the
    other requests on the server. ``history`` is the step's request's events so far."""
    event = step.event
    kind = event["kind"]
    who = f"Request {event['request']}" if event["request"] else "The server"
    if kind == kinds.REQUEST_RECEIVED:
        query = f"?{event['query']}" if event.get("query") else ""
        return (
            f"{who} ({event['method']} {event['path']}{query}) has reached Django. "
            "None of the view's code has run yet."
        )
    if kind == kinds.VIEW_TYPE_CHECKED:
        if event["is_async"]:
            return (
                f"Django inspects {event['function']} and finds a coroutine function "
                "(async def). It will await the view directly on the event loop: no thread "
                "is needed, and the loop stays shared with every other request."
            )
        if event["runs_on"] == "worker_thread":
            return (
                f"Django inspects {event['function']} and finds a plain function (def). "
                f"Under ASGI it wraps it in {event['adapter']}, so the view will run in a "
                "worker thread while the event loop stays free. The cost: this request "
                "occupies a thread until the view returns."
            )
        return (
            f"Django inspects {event['function']}: the server calls it in the request's own thread."
        )
    if kind == kinds.THREAD_HANDOFF:
        return (
            f"The view moves from {event['from_thread']} to worker thread {event['to_thread']}"
            f" (it waited {ms(event['waited_ns'])} for it). The event loop thread can serve "
            "other requests meanwhile."
        )
    if kind == kinds.VIEW_STARTED:
        place = "the event loop thread" if event["task"] else event["thread"]
        return f"The view's body starts running on {place}."
    if kind == kinds.AWAIT_SUSPENDED:
        return (
            f"At line {event['line']} the view awaits {event['awaiting']}. The coroutine "
            "pauses here and hands the event loop back, so other requests run while this one "
            "waits."
        )
    if kind == kinds.AWAIT_RESUMED:
        changed = _changed_variables(step, history)
        gained = f" It now holds {changed}." if changed else ""
        return (
            f"{event['awaiting']} is done after {ms(event['duration_ns'])} and the event loop "
            f"resumes the view.{gained} For {ms(event['off_loop_ns'])} of that wait the loop "
            "was free for other requests."
        )
    if kind == kinds.CALL_BLOCKING:
        doing = (
            f"waiting ({ms(event['cpu_ns'])} of CPU)"
            if event["waiting"]
            else f"computing ({ms(event['cpu_ns'])} of CPU)"
        )
        if event["on_event_loop"]:
            return (
                f"{event['callable']}() at line {event['line']} kept the event loop thread for "
                f"{ms(event['duration_ns'])}, {doing}. No await means no pause: for that whole "
                "time no other request on this server could make progress."
            )
        return (
            f"{event['callable']}() at line {event['line']} kept {event['thread']} for "
            f"{ms(event['duration_ns'])}, {doing}. Only this worker thread was stuck; other "
            "requests went on, each in a thread of its own."
        )
    if kind == kinds.LOOP_BLOCKED:
        if event["held_by"]:
            culprit = f", held by {event['held_by']}() at line {event['line']}"
        else:
            culprit = (
                ", in code outside the traced views (Django, the server, or this visualizer itself)"
            )
        return (
            f"The event loop ran one piece of code for {ms(event['duration_ns'])} without a "
            f"break{culprit}. Every other request on this loop had to wait that long."
        )
    if kind == kinds.VIEW_RETURNED:
        return f"The view returns {event['returned']}; Django now turns it into a response."
    if kind == kinds.RESPONSE_STARTED:
        return f"Django hands the status ({event['status']}) and headers to the server."
    if kind == kinds.RESPONSE_FINISHED:
        return (
            f"The last of {event['bytes']} bytes is handed to the server, "
            f"{ms(event['duration_ns'])} after the request arrived. This request is done."
        )
    return f"Recorded event {kind}."


def _changed_variables(step: Step, history: list[dict[str, Any]]) -> str:
    before: dict[str, str] = {}
    for event in history:
        if event["seq"] >= step.number:
            break
        if event["locals"]:
            before = event["locals"]
    changed = [
        f"{name} = {value}"
        for name, value in step.event["locals"].items()
        if before.get(name) != value
    ]
    return ", ".join(changed)


def flow_at(current: Step | None, history: list[dict[str, Any]]) -> list[FlowNode]:
    """The concept flow for the current step's request (``history``: its events so far):
    where it is, where it has been, and the branch Django did not take."""
    visited: set[str] = set()
    branch = None
    for event in history:
        if event["kind"] == kinds.VIEW_TYPE_CHECKED:
            branch = "async" if event["is_async"] else "sync"
        node = _flow_node(event)
        if node:
            visited.add(node)
    current_node = _flow_node(current.event) if current else None
    nodes = []
    for node_id, label, node_branch in FLOW_NODES:
        if node_id == current_node:
            state = "current"
        elif branch and node_branch and node_branch != branch:
            state = "not-taken"
        elif node_id in visited:
            state = "visited"
        else:
            state = "pending"
        nodes.append(FlowNode(node_id, label, node_branch, state))
    return nodes


def _flow_node(event: dict[str, Any]) -> str | None:
    kind = event["kind"]
    if kind == kinds.VIEW_STARTED:
        return "loop" if event["task"] else "thread"
    if kind == kinds.CALL_BLOCKING:
        return "loop" if event["on_event_loop"] else "block"
    if kind == kinds.LOOP_BLOCKED:
        # A stall counts as the view running on the loop only if the view caused it; one
        # caused elsewhere (a sync view's request can see one) moves no request along.
        return "loop" if event["held_by"] else None
    return {
        kinds.REQUEST_RECEIVED: "received",
        kinds.VIEW_TYPE_CHECKED: "check",
        kinds.THREAD_HANDOFF: "thread",
        kinds.AWAIT_SUSPENDED: "await",
        kinds.AWAIT_RESUMED: "await",
        kinds.VIEW_RETURNED: "returns",
        kinds.RESPONSE_STARTED: "sends",
        kinds.RESPONSE_FINISHED: "sends",
    }.get(kind)


def source_lines(scenario: Scenario | None, current: Step | None) -> list[list[SourceLine]]:
    """The view and its helpers, one block each, with real line numbers; the current
    step's line marked."""
    if scenario is None:
        return []
    current_line = None
    if current is not None and _is_scenario_code(scenario, current.event):
        current_line = current.event["line"]
    blocks = []
    for function in (scenario.view, *scenario.helpers):
        lines, start = inspect.getsourcelines(function)
        blocks.append(
            [
                SourceLine(start + offset, text.rstrip("\n"), start + offset == current_line)
                for offset, text in enumerate(lines)
            ]
        )
    return blocks


def _is_scenario_code(scenario: Scenario, event: dict[str, Any]) -> bool:
    """Whether the event happened in the code shown. Compared by file name and function,
    not full path, so traces recorded in another checkout (the bundled examples) match."""
    file = event["file"]
    shown = {f.__name__ for f in (scenario.view, *scenario.helpers)}
    source = inspect.getsourcefile(scenario.view) or ""
    return bool(file) and Path(file).name == Path(source).name and event["function"] in shown
