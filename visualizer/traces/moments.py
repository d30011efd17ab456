"""Key moments: the few steps of a trace that carry the lesson, found by rules over its
events (kinds, durations, threads), never by step number, so they follow the trace. Plain:
it reads a trace's events, never the database (the installable app uses it too)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tracer import events as kinds
from tracer.events import Event, LoopBlocked, RequestSummary
from visualizer.traces.narration import (
    TraceContext,
    code_stalls,
    context_of,
    culprit_words,
    doing_words,
    loop_of,
    ms,
    on_awaited_line,
    plural,
    private_loop,
    request_list,
    were,
)

MAX_MOMENTS = 4
# The kinds the rules look at (the rest of a long trace is never loaded for them).
MOMENT_KINDS = (
    kinds.REQUEST_RECEIVED,
    kinds.VIEW_TYPE_CHECKED,
    kinds.THREAD_HANDOFF,
    kinds.VIEW_STARTED,
    kinds.AWAIT_SUSPENDED,
    kinds.AWAIT_RESUMED,
    kinds.CALL_BLOCKING,
    kinds.LOOP_BLOCKED,
    kinds.VIEW_RETURNED,
)


@dataclass(frozen=True)
class KeyMoment:
    step: int
    request: str | None
    title: str
    explanation: str


Rule = Callable[[list[Event], TraceContext], "KeyMoment | None"]


def key_moments(
    events: list[Event], requests: list[RequestSummary], context: TraceContext | None = None
) -> list[KeyMoment]:
    """Up to four moments, in step order. By priority: the longest stall of the event
    loop, a view answering with a server error, a blocking call on the loop, a request
    that waited for the server to take it, the longest await, the first hand-off to a
    thread, a blocking call in a thread (or, when none of these happened, the longest view
    that ran straight through), and Django's view-type check. ``context``: the trace's
    (without one, the texts say only what the events tell)."""
    context = context or context_of(None, requests, events)
    found: list[KeyMoment] = []
    rules: tuple[Rule, ...] = (
        _stall,
        _error_response,
        _blocking_on_loop,
        _queued,
        _longest_await,
        _handoff,
        _blocking_in_thread,
    )
    for rule in rules:
        moment = rule(events, context)
        if moment is not None:
            found.append(moment)
    if not found:
        # Nothing paused, blocked or failed: the lesson is that the view ran straight
        # through, holding its thread the whole time.
        ran = _ran_through(events, context)
        if ran is not None:
            found.append(ran)
    checked = _type_check(events, context)
    if checked is not None and len(found) < MAX_MOMENTS:
        found.append(checked)
    return sorted(found[:MAX_MOMENTS], key=lambda moment: moment.step)


def requests_held_up(stall: LoopBlocked, requests: list[RequestSummary]) -> list[str]:
    """Requests that were waiting for the server while the loop was stalled, other than
    the one that stalled it (see TraceContext.held_up_by_stall)."""
    return context_of(None, requests).held_up_by_stall(stall)


def _stall(events: list[Event], context: TraceContext) -> KeyMoment | None:
    # A busy machine's delay is no lesson about the code.
    stall = max(code_stalls(events), key=lambda e: e["duration_ns"], default=None)
    if stall is None:
        return None
    doing = doing_words(stall)
    how = f", {doing}" if doing else ""
    if context.wsgi:
        return KeyMoment(
            stall["seq"],
            stall["request"],
            f"A private loop stalls for {ms(stall['duration_ns'])}",
            f"{culprit_words(stall)} held the private loop of request {stall['request']} "
            f"in {stall['thread']}{how}. Only that request's own loop waited.",
        )
    held_up = context.held_up_by_stall(stall)
    waited = (
        f"{request_list(held_up)} {were(held_up)} in the server and had to wait."
        if held_up
        else "No other request was in the server at the time, so this one cost nobody else."
    )
    return KeyMoment(
        stall["seq"],
        stall["request"],
        f"The event loop stalls for {ms(stall['duration_ns'])}",
        f"{culprit_words(stall)} held the event loop's thread{how}, so nothing else on the "
        f"loop could run. {waited}",
    )


def _blocking_on_loop(events: list[Event], context: TraceContext) -> KeyMoment | None:
    if context.wsgi:
        return None
    # A call whose result the view awaited on the same line (asyncio.to_thread(...)) was
    # not a blocking call made without await, whatever it took to set up.
    calls = [
        e
        for e in events
        if e["kind"] == kinds.CALL_BLOCKING
        and e["on_event_loop"]
        and not on_awaited_line(e, context)
    ]
    call = max(calls, key=lambda e: e["duration_ns"], default=None)
    if call is None:
        return None
    return KeyMoment(
        call["seq"],
        call["request"],
        f"{call['callable']} blocks the event loop for {ms(call['duration_ns'])}",
        f"An async view called {call['callable']} at line {call['line']} without await: the "
        f"event loop's own thread spent that time {doing_words(call)}, and everything else "
        "on the loop waited with it.",
    )


def _queued(events: list[Event], context: TraceContext) -> KeyMoment | None:
    """The request that waited longest for a WSGI server to take it (under ASGI a request
    waits only for a stalled loop, which the stall's moment tells)."""
    if context.asgi:
        return None
    waits = [(context.queued_behind(r.id), r.id) for r in context.requests]
    (waited, ahead), request = max(waits, key=lambda wait: wait[0][0], default=((0, []), ""))
    if not ahead:
        return None
    received = next(
        (e for e in events if e["kind"] == kinds.REQUEST_RECEIVED and e["request"] == request),
        None,
    )
    if received is None:
        return None
    threads = context.server_threads
    server = f"The server, with {threads}," if threads else "The server"
    return KeyMoment(
        received["seq"],
        request,
        f"Request {request} waits {ms(waited)} for the server to take it",
        f"{server} took request {request} only once {request_list(ahead).lower()} "
        f"{were(ahead)} done: it was sent {ms(waited)} before Django saw it"
        f"{', waiting for a free thread' if context.wsgi else ''}.",
    )


def _longest_await(events: list[Event], context: TraceContext) -> KeyMoment | None:
    resumed = max(
        (e for e in events if e["kind"] == kinds.AWAIT_RESUMED),
        key=lambda e: e["duration_ns"],
        default=None,
    )
    if resumed is None:
        return None
    suspended = next(
        (
            e
            for e in reversed(events)
            if e["kind"] == kinds.AWAIT_SUSPENDED
            and e["request"] == resumed["request"]
            and e["seq"] < resumed["seq"]
        ),
        resumed,
    )
    if context.wsgi:
        return KeyMoment(
            suspended["seq"],
            suspended["request"],
            f"The view pauses at await {resumed['awaiting']}, and its thread waits",
            f"Request {resumed['request']} waited {ms(resumed['duration_ns'])} at line "
            f"{resumed['line']} on its private loop. Under WSGI the pause freed nothing: "
            "the request's thread waited with it.",
        )
    others = list(
        dict.fromkeys(
            e["request"]
            for e in events
            if suspended["seq"] < e["seq"] < resumed["seq"]
            and e["request"] not in (None, resumed["request"])
            and e["task"] is not None
        )
    )
    meanwhile = (
        f"Meanwhile the loop moved {request_list(others).lower()} along."
        if others
        else "No other request needed the loop meanwhile, but it was free for one."
    )
    return KeyMoment(
        suspended["seq"],
        suspended["request"],
        f"The view pauses at await {resumed['awaiting']} and frees the event loop",
        f"Request {resumed['request']} waited {ms(resumed['duration_ns'])} at line "
        f"{resumed['line']} without keeping the event loop busy. {meanwhile}",
    )


def _handoff(events: list[Event], context: TraceContext) -> KeyMoment | None:
    handoff = next((e for e in events if e["kind"] == kinds.THREAD_HANDOFF), None)
    if handoff is None:
        return None
    returned = next(
        (
            e
            for e in events
            if e["kind"] == kinds.VIEW_RETURNED and e["request"] == handoff["request"]
        ),
        None,
    )
    threads = len({e["to_thread"] for e in events if e["kind"] == kinds.THREAD_HANDOFF})
    held = f" for {ms(returned['t_ns'] - handoff['t_ns'])}" if returned else ""
    free = " and the event loop stays free" if context.asgi else ""
    return KeyMoment(
        handoff["seq"],
        handoff["request"],
        f"Django hands request {handoff['request']} to worker thread {handoff['to_thread']}",
        f"The view is a plain def, so Django runs it in a worker thread{free}. The thread is "
        f"taken{held}, until the view returns; this trace used "
        f"{plural(threads, 'worker thread')} in all.",
    )


def _blocking_in_thread(events: list[Event], context: TraceContext) -> KeyMoment | None:
    call = max(
        (e for e in events if e["kind"] == kinds.CALL_BLOCKING and not e["on_event_loop"]),
        key=lambda e: e["duration_ns"],
        default=None,
    )
    if call is None:
        return None
    start, end = call["t_ns"] - call["duration_ns"], call["t_ns"]
    if context.wsgi:
        queued = context.waiting_outside(start, end, besides=call["request"])
        cost = (
            f"; {request_list(queued).lower()} {were(queued)} waiting for the server meanwhile"
            if queued
            else ""
        )
        consequence = f"Under WSGI that thread serves this request alone from start to end{cost}."
    elif context.asgi:
        consequence = (
            "The event loop is not blocked, but each request waiting like this takes a "
            "thread of its own."
        )
    else:
        consequence = "The thread can do nothing else meanwhile."
    return KeyMoment(
        call["seq"],
        call["request"],
        f"{call['callable']} holds thread {call['thread']} for {ms(call['duration_ns'])}",
        f"The blocking call at line {call['line']} keeps its thread {doing_words(call)}. "
        f"{consequence}",
    )


def _error_response(events: list[Event], context: TraceContext) -> KeyMoment | None:
    failed = next(
        (
            e
            for e in events
            if e["kind"] == kinds.VIEW_RETURNED
            and re.search(r"status=5\d\d", e.get("returned", ""))
        ),
        None,
    )
    if failed is None:
        return None
    held = [
        f"{name} = {_clip(value)}"
        for name, value in (failed.get("locals") or {}).items()
        if name != "request"
    ]
    variables = f" Its variables then: {'; '.join(held)}." if held else ""
    return KeyMoment(
        failed["seq"],
        failed["request"],
        f"Request {failed['request']}'s view answers with a server error",
        f"At line {failed['line']} the view returned {failed['returned']}.{variables}",
    )


def _ran_through(events: list[Event], context: TraceContext) -> KeyMoment | None:
    started = {e["request"]: e for e in events if e["kind"] == kinds.VIEW_STARTED}
    spans = [
        (e["t_ns"] - started[e["request"]]["t_ns"], e)
        for e in events
        if e["kind"] == kinds.VIEW_RETURNED and e["request"] in started
    ]
    if not spans:
        return None
    took, returned = max(spans, key=lambda span: span[0])
    begun = started[returned["request"]]
    where = loop_of(begun, context) if begun["task"] else f"thread {begun['thread']}"
    return KeyMoment(
        returned["seq"],
        returned["request"],
        f"The view returns {ms(took)} after it started, without pausing once",
        f"For all that time it kept {where} to itself. Calls shorter than the blocking "
        "threshold are not listed as steps, but they held the thread just the same.",
    )


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_check(events: list[Event], context: TraceContext) -> KeyMoment | None:
    check = next((e for e in events if e["kind"] == kinds.VIEW_TYPE_CHECKED), None)
    if check is None:
        return None
    if check["is_async"] and check.get("runs_on") == "event_loop":
        outcome = "an async def view, so Django awaits it right on the event loop"
    elif private_loop(check):
        outcome = (
            "an async def view; under WSGI Django runs it with async_to_sync on a private "
            "loop, for this request alone"
        )
    elif check["is_async"]:
        outcome = "an async def view"
    elif check.get("runs_on") == "worker_thread":
        outcome = "a plain def view, so Django will run it in a worker thread"
    else:
        outcome = "a plain def view, so Django calls it in the request's own thread"
    return KeyMoment(
        check["seq"],
        check["request"],
        "Django checks what kind of view it has",
        f"inspect.iscoroutinefunction says it is {outcome}.",
    )
