"""A quiz on one trace: questions that point at its execution table and variable tracker,
with the right answer and the wrong ones computed from its events."""

from __future__ import annotations

from dataclasses import dataclass

from tracer import events as kinds
from tracer.events import Event, RequestSummary
from visualizer.traces.narration import TraceContext, code_stalls, culprit_words, loop_of, ms
from visualizer.traces.sources import TraceSource, trace_context
from visualizer.traces.steps import (
    NOT_SET,
    UNKNOWN,
    describe,
    tracker_variables,
    variable_tracker,
    whole_number,
)

NEVER_PAUSES = "It never pauses"


@dataclass(frozen=True)
class QuizQuestion:
    key: str  # stable within the trace: the form field is "q-<key>"
    prompt: str
    choices: tuple[str, ...]
    answer: int  # index of the right choice
    explanation: str
    step: int  # the step the answer is about
    # The parts of the page that would give the answer away, hidden until it is answered:
    # "action" and "thread" (columns of the execution table), "tracker".
    gives_away: frozenset[str] = frozenset()

    def is_right(self, raw: str | None) -> bool | None:
        """None: not answered (or not a choice)."""
        index = whole_number(raw)
        if index is None or index >= len(self.choices):
            return None
        return index == self.answer


def quiz_for(source: TraceSource) -> tuple[str | None, list[QuizQuestion]]:
    """The request the quiz is about (the first whose view ran), and its questions."""
    requests = source.requests()
    started = source.events_of_kinds((kinds.VIEW_STARTED,))
    if not requests or not started:
        return None, []
    focus = started[0]["request"]
    if focus is None:
        return None, []
    events = source.request_events(focus, source.total)
    context = trace_context(source)
    questions = [
        question
        for question in (
            pause_question(focus, events, context),
            value_question(focus, events, context),
            waiting_question(focus, events, source, requests),
        )
        if question is not None
    ]
    return focus, questions


def _with_answer(right: str, wrong: list[str]) -> tuple[tuple[str, ...], int]:
    """Choices in a fixed order that does not give the answer away (sorted), and the
    right one's index."""
    choices = sorted({right, *wrong}, key=lambda text: (len(text), text))
    return tuple(choices), choices.index(right)


def pause_question(
    focus: str, events: list[Event], context: TraceContext = UNKNOWN
) -> QuizQuestion | None:
    """At which step does the view pause? Wrong answers are other steps of the request."""
    suspended = next((e for e in events if e["kind"] == kinds.AWAIT_SUSPENDED), None)
    other_steps = [
        e["seq"]
        for e in events
        if e["kind"]
        in (kinds.VIEW_TYPE_CHECKED, kinds.VIEW_STARTED, kinds.CALL_BLOCKING, kinds.VIEW_RETURNED)
    ]
    if not other_steps:
        return None
    if suspended is not None:
        resumed = next(
            (e for e in events if e["kind"] == kinds.AWAIT_RESUMED and e["seq"] > suspended["seq"]),
            None,
        )
        right = f"Step {suspended['seq']}"
        after = (
            f" It resumed at step {resumed['seq']}, {ms(resumed['duration_ns'])} later."
            if resumed
            else ""
        )
        gave = (
            " and gave the event loop back"
            if context.asgi
            else ", while the request's thread waited"
            if context.wsgi
            else ""
        )
        explanation = (
            f"At step {suspended['seq']} the view reached await {suspended['awaiting']} "
            f"(line {suspended['line']}){gave}.{after}"
        )
        step = suspended["seq"]
    else:
        right = NEVER_PAUSES
        started = next((e for e in events if e["kind"] == kinds.VIEW_STARTED), None)
        thread = started["thread"] if started else "?"
        where = (
            f"on {loop_of(started, context)}"
            if started and started["task"]
            else f"in thread {thread}"
        )
        explanation = (
            f"The table shows no pause for request {focus}: its view ran {where} without "
            "stopping at an await, from start to return."
        )
        step = started["seq"] if started else other_steps[0]
    wrong = [f"Step {seq}" for seq in other_steps if f"Step {seq}" != right][:3]
    if right != NEVER_PAUSES:
        wrong.append(NEVER_PAUSES)
    choices, answer = _with_answer(right, wrong)
    return QuizQuestion(
        "pause",
        f"Look at request {focus} in the execution table. At which step does its view pause "
        f"at an await{' and hand the event loop back' if context.asgi else ''}?",
        choices,
        answer,
        explanation,
        step,
        frozenset({"action"}),  # the action says where the view pauses
    )


def value_question(
    focus: str, events: list[Event], context: TraceContext = UNKNOWN
) -> QuizQuestion | None:
    """What does a variable hold after the step that last changed one?"""
    columns = variable_tracker(events, focus)
    changed = [c for c in columns if c.changed and c.label.startswith("After step")]
    if not changed:
        return None
    column = changed[-1]
    name = sorted(column.changed)[0]
    right = column.values[name]
    names = tracker_variables(columns)
    wrong = [c.values.get(name, NOT_SET) for c in columns] + [
        column.values.get(other, NOT_SET) for other in names if other != name
    ]
    wrong = [value for value in dict.fromkeys(wrong) if value != right][:3]
    if not wrong:
        return None
    shown = [_value_text(value) for value in wrong]
    choices, answer = _with_answer(_value_text(right), shown)
    event = next(e for e in events if e["seq"] == column.step)
    return QuizQuestion(
        "value",
        f"Request {focus}'s view has run step {column.step}"
        f"{f' (line {event_line})' if (event_line := _line_of(events, column.step)) else ''}: "
        f"what does {name} hold after it? (The variable tracker shows it once you answer.)",
        choices,
        answer,
        f"The tracker's column \"{column.label}\" shows {name} = {right}: the view's "
        f"variables as recorded at step {column.step} ({describe(event, context)[0]}).",
        column.step,
        frozenset({"tracker"}),
    )


def _line_of(events: list[Event], seq: int) -> int | None:
    return next((e["line"] for e in events if e["seq"] == seq), None)


def hidden_parts(questions: list[QuizQuestion], answers: dict[str, int | None]) -> set[str]:
    """The parts of the page that would give away an answer not yet given."""
    return {
        part
        for question in questions
        if answers.get(question.key) is None
        for part in question.gives_away
    }


def _value_text(value: str) -> str:
    return "not set yet" if value == NOT_SET else value


def _queued_behind(
    focus: str,
    events: list[Event],
    requests: list[RequestSummary],
    source: TraceSource,
    context: TraceContext,
) -> QuizQuestion | None:
    """Which request waited to be served until this one was done? (A server with no free
    thread, such as WSGI with one worker of one thread, queues the others.) Asked only
    when the view ran in a thread, and it needs the client's sending times."""
    started = next((e for e in events if e["kind"] == kinds.VIEW_STARTED), None)
    if started is None or started["task"] is not None:
        return None
    by_id = {r["id"]: r for r in requests}
    finished = by_id[focus]["finished_ns"]
    if finished is None:
        return None
    waited = [
        r
        for r in requests
        if r["id"] != focus
        and (sent := r.get("client_sent_ns"))
        and sent < finished
        and r["received_ns"] >= finished
    ]
    served_meanwhile = [
        r["id"]
        for r in requests
        if r["id"] != focus and r["received_ns"] < finished and r not in waited
    ]
    if not waited:
        return None
    first = min(waited, key=lambda r: r["received_ns"])
    choices, answer = _with_answer(first["id"], [focus, *served_meanwhile[:2]])
    # Every request in waited has a sending time.
    wait_ms = (first["received_ns"] - (first.get("client_sent_ns") or 0)) / 1e6
    arrival = source.request_events(first["id"], source.total)[:1]
    return QuizQuestion(
        "queued",
        f"Look at request {focus}. Which of these requests had to wait until it was done "
        "before the server even took it?",
        choices,
        answer,
        f"Request {first['id']} was sent while {focus} was being served, but the server "
        f"took it only after {focus} finished: it waited {wait_ms:.0f} ms"
        f"{' for a free thread' if context.wsgi else ''}.",
        arrival[0]["seq"] if arrival else 1,
    )


def waiting_question(
    focus: str, events: list[Event], source: TraceSource, requests: list[RequestSummary]
) -> QuizQuestion | None:
    """Which request waited because of a loop stall; for a trace without one, which
    thread ran the request's view."""
    stalls = code_stalls(source.events_of_kinds((kinds.LOOP_BLOCKED,)))
    context = trace_context(source)
    if stalls and not context.wsgi:
        stall = max(stalls, key=lambda e: e["duration_ns"])
        held_up = context.held_up_by_stall(stall)
        culprit = stall["request"]
        if held_up and culprit:
            start, end = stall["started_ns"], stall["started_ns"] + stall["duration_ns"]
            apart = [
                r["id"]
                for r in requests
                if r["id"] not in held_up
                and r["id"] != culprit
                and (
                    (r.get("client_sent_ns") or r["received_ns"]) >= end
                    or (r["finished_ns"] or 0) <= start
                )
            ]
            choices, answer = _with_answer(held_up[0], [culprit, *apart[:2]])
            return QuizQuestion(
                "waited",
                f"At step {stall['seq']} the event loop stalled for {ms(stall['duration_ns'])} "
                f"while request {culprit} ran {culprit_words(stall)}. "
                "Which of these requests had to wait because of it?",
                choices,
                answer,
                f"Request {held_up[0]} was in the server during the stall, and nothing else "
                f"could run on the loop until {stall['held_by'] or 'that code'} finished; request "
                f"{culprit} was the one running.",
                stall["seq"],
                frozenset({"action"}),  # the stall's action names whom it held up
            )
    queued = _queued_behind(focus, events, requests, source, context)
    if queued is not None:
        return queued
    started = next((e for e in events if e["kind"] == kinds.VIEW_STARTED), None)
    if started is None:
        return None
    threads = {e["thread"] for e in source.events_of_kinds((kinds.VIEW_STARTED,))}
    threads.add("MainThread")
    if len(threads) < 2:
        return None
    right = started["thread"]
    choices, answer = _with_answer(right, sorted(threads - {right})[:3])
    handoff = next((e for e in events if e["kind"] == kinds.THREAD_HANDOFF), None)
    how = (
        f"Step {handoff['seq']} hands it from {handoff['from_thread']} to {right}."
        if handoff
        else f"Its view started on {right} at step {started['seq']}."
    )
    return QuizQuestion(
        "thread",
        f"Look at the execution table: which thread ran request {focus}'s view?",
        choices,
        answer,
        how,
        handoff["seq"] if handoff else started["seq"],
        frozenset({"action", "thread"}),  # the hand-off's action names the thread too
    )
