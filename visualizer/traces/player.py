"""The state of the player at one step of a recording: what every panel of the scenario page
shows. The live stream, the htmx swaps and the plain page all render from this.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from tracer import events as kinds
from tracer.events import EditedCode, Event
from visualizer.scenarios.catalog import Scenario
from visualizer.traces.loop_picture import LoopPicture, loop_picture
from visualizer.traces.narration import (
    FLOW_NODE_IDS,
    TraceContext,
    flow_labels,
    flow_node,
    narration,
)
from visualizer.traces.sources import (
    TraceSource,
    edited_code_of,
    per_trace,
    pictures,
    run_start_of,
    trace_context,
)
from visualizer.traces.steps import (
    NOT_SET,
    UNKNOWN,
    Step,
    TrackerColumn,
    step_rows,
    tracker_variables,
    variable_tracker,
)
from visualizer.traces.time_strip import (
    Lanes,
    TimeStrip,
    lanes_of,
    marked,
    step_times,
    time_strip,
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
    tracker_request: str | None = None  # the request the flow and the tracker follow
    tracker_columns: list[TrackerColumn] = field(default_factory=list)
    tracker_variables: list[str] = field(default_factory=list)
    picture: LoopPicture | None = None  # the event loop and the threads at this step
    strip: TimeStrip | None = None  # the recording's time axis, this step's instant marked
    # The recording is a run of edited code (the playground): ``source`` is that code.
    edited: bool = False

    @property
    def source_note(self) -> str:
        """Which request the code panel's marked line is, said under its title."""
        if self.current is None:
            return ""
        request = self.current.request
        line = next((line for block in self.source for line in block if line.current), None)
        if request is None:
            return "This step is not one request's: no line of the view is marked."
        if line is None:
            return (
                f"{request} is not in the view's code at this step (it is in the server's "
                "or Django's)."
            )
        return f"▶ line {line.number}: where {request} is at this step."

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
            flow=flow_at(None, [], trace_context(source) if source else None),
            source=source_lines(scenario, None, edited_code_of(source) if source else None),
            edited=source is not None and edited_code_of(source) is not None,
        )
    events = source.events_between(index - TABLE_WINDOW, index + TABLE_WINDOW)
    received = source.received_ns({e["request"] for e in events if e["request"]})
    context = trace_context(source)
    rows = step_rows(events, received, run_start_of(source), context)
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
        narration=narrate(current, history, context),
        flow=flow_at(current, history, context),
        source=source_lines(scenario, current, edited_code_of(source)),
        tracker_request=request,
        tracker_columns=columns,
        tracker_variables=tracker_variables(columns),
        picture=pictures.read(source, lambda picture: loop_picture(picture, index)),
        strip=strip_at(source, current.event["t_ns"]),
        edited=edited_code_of(source) is not None,
    )


@per_trace
def _strip_parts(source: TraceSource) -> tuple[Lanes, TimeStrip] | None:
    """A recording's lanes and its strip, drawn once per trace (and length) for every step
    to mark. A run still going on is drawn up to its latest step."""
    document = source.document()
    events = document["events"]
    going_on = any(request["finished_ns"] is None for request in document["requests"])
    now = max((event["t_ns"] for event in events), default=None) if going_on else None
    lanes = lanes_of(document, now_ns=now)
    if lanes is None:
        return None
    return lanes, time_strip(lanes, times=step_times(events))


def strip_at(source: TraceSource, t_ns: int) -> TimeStrip | None:
    """The time strip of the recording with the instant ``t_ns`` marked."""
    parts = _strip_parts(source)
    return marked(parts[1], parts[0], t_ns) if parts is not None else None


NOTHING_YET = (
    "Nothing recorded yet. Press Run to send a real request to this view and watch each "
    "step as it happens."
)


def narrate(step: Step, history: list[Event], context: TraceContext | None = None) -> str:
    """A plain-language account of one step: what happened, and what it means for the
    other requests on the server. ``history`` is the step's request's events so far;
    ``context`` the trace's (without one, the text says only what the event tells)."""
    changed = _changed_variables(step, history) if step.event["kind"] == kinds.AWAIT_RESUMED else ""
    return narration(step.event, context or UNKNOWN, changed)


def _changed_variables(step: Step, history: list[Event]) -> str:
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


def flow_at(
    current: Step | None, history: list[Event], context: TraceContext | None = None
) -> list[FlowNode]:
    """The concept flow for the current step's request (``history``: its events so far):
    where it is, where it has been, and the branch Django did not take. Its labels follow
    the server the trace was recorded on."""
    context = context or UNKNOWN
    labels = flow_labels(context)
    visited: set[str] = set()
    branch = None
    for event in history:
        if event["kind"] == kinds.VIEW_TYPE_CHECKED:
            branch = "async" if event["is_async"] else "sync"
        node = flow_node(event, context)
        if node:
            visited.add(node)
    current_node = flow_node(current.event, context) if current else None
    nodes = []
    for node_id, node_branch in FLOW_NODE_IDS:
        if node_id == current_node:
            state = "current"
        elif branch and node_branch and node_branch != branch:
            state = "not-taken"
        elif node_id in visited:
            state = "visited"
        else:
            state = "pending"
        nodes.append(FlowNode(node_id, labels[node_id], node_branch, state))
    return nodes


def source_lines(
    scenario: Scenario | None, current: Step | None, code: EditedCode | None = None
) -> list[list[SourceLine]]:
    """The view and its helpers, one block each, with real line numbers; the current
    step's line marked. For a run of edited code (the playground), that code, as it ran."""
    if code is not None:
        return [edited_lines(code, current)]
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


def edited_lines(code: EditedCode, current: Step | None) -> list[SourceLine]:
    """The edited module's lines, numbered from 1 as its events' lines are."""
    current_line = None
    if current is not None and Path(current.event["file"] or "").name == code["file"]:
        current_line = current.event["line"]
    return [
        SourceLine(number, text, number == current_line)
        for number, text in enumerate(code["text"].splitlines(), start=1)
    ]


def _is_scenario_code(scenario: Scenario, event: Event) -> bool:
    """Whether the event happened in the code shown. Compared by file name and function,
    not full path, so traces recorded in another checkout (the bundled examples) match."""
    file = event["file"]
    if not file:
        return False
    shown = {f.__name__ for f in (scenario.view, *scenario.helpers)}
    source = inspect.getsourcefile(scenario.view) or ""
    return Path(file).name == Path(source).name and event["function"] in shown
