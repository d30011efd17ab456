"""Every sentence the product says about a trace, in one place: a table of event kinds, each
with the texts it is shown as, and the conditions read from the trace that those texts
depend on (ASGI or WSGI, where the view ran, why a call was slow, who else was waiting).
The execution table, the narration, the concept flow, the key moments, the lab's reveal
and the transcript all take their words from here, so that none of them says something the
trace contradicts; where the trace cannot tell, the text says less.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tracer import events as kinds
from tracer.events import (
    AwaitRaised,
    AwaitResumed,
    AwaitSuspended,
    CallBlocking,
    Event,
    JSONObject,
    LoopBlocked,
    RequestReceived,
    RequestSummary,
    ResponseFinished,
    ResponseStarted,
    ThreadHandoff,
    ThreadHop,
    TraceDocument,
    ViewReturned,
    ViewStarted,
    ViewTypeChecked,
)

# A slow span of one thread: the events with a ``cause``.
SlowSpan = CallBlocking | LoopBlocked

NOT_SET = "—"
# A request that waited longer than this between being sent and being taken by the server
# is said to have queued (a busy machine takes a few milliseconds to accept one).
QUEUE_WAIT_NS = 20_000_000


def ms(nanoseconds: int | float) -> str:
    value = nanoseconds / 1_000_000
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def request_list(ids: list[str], shown: int = 5) -> str:
    """'Request r2', 'Requests r2, r3', 'Requests r1, r2, r3, r4, r5 and 3 more'."""
    if len(ids) == 1:
        return f"Request {ids[0]}"
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f"Requests {', '.join(ids[:shown])}{more}"


def were(ids: list[str]) -> str:
    return "was" if len(ids) == 1 else "were"


@dataclass(frozen=True)
class RequestTimes:
    id: str
    received_ns: int
    finished_ns: int | None  # None: still running (a live run), or never finished
    sent_ns: int | None  # when its client sent it, where the client said


@dataclass(frozen=True)
class TraceContext:
    """What the texts of one trace depend on beyond the event they describe."""

    interface: str | None  # "asgi", "wsgi", or None when the trace does not say
    workers: int | None  # of a WSGI server, when known
    threads: int | None  # per WSGI worker, when known
    gil_enabled: bool | None
    requests: tuple[RequestTimes, ...] = ()
    # (request, line) of every await the views made: a call timed on such a line is the
    # awaited call's own setup, not a call made without await.
    awaited_lines: frozenset[tuple[str | None, int | None]] = frozenset()
    # Requests whose Django work (request_started receivers, closing the response) was
    # seen running in another thread (thread.hop events).
    hopped: frozenset[str] = frozenset()

    @property
    def asgi(self) -> bool:
        return self.interface == "asgi"

    @property
    def wsgi(self) -> bool:
        return self.interface == "wsgi"

    @functools.cached_property
    def _by_id(self) -> dict[str, RequestTimes]:
        return {r.id: r for r in reversed(self.requests)}  # the first of an id wins

    @functools.cached_property
    def _by_finish(self) -> tuple[list[int], list[RequestTimes]]:
        """The finished requests in order of finishing, and their finishing times."""
        finished = sorted(
            (r for r in self.requests if r.finished_ns is not None),
            key=lambda r: r.finished_ns or 0,
        )
        return [r.finished_ns or 0 for r in finished], finished

    @functools.cached_property
    def _position(self) -> dict[int, int]:
        """Each request's place in the trace, by the identity of its RequestTimes."""
        return {id(r): index for index, r in enumerate(self.requests)}

    def times(self, request: str | None) -> RequestTimes | None:
        return self._by_id.get(request) if request is not None else None

    def in_server(self, start: int, end: int, besides: str | None = None) -> list[str]:
        """Requests other than ``besides`` that were in the server (taken by it, not yet
        finished) at some moment between start and end."""
        return [
            r.id
            for r in self.requests
            if r.id != besides
            and r.received_ns < end
            and (r.finished_ns is None or r.finished_ns > start)
        ]

    def waiting_outside(self, start: int, end: int, besides: str | None = None) -> list[str]:
        """Requests sent but not yet taken by the server at some moment between start and
        end (known only where the client said when it sent them)."""
        return [
            r.id
            for r in self.requests
            if r.id != besides
            and r.sent_ns is not None
            and r.sent_ns < end
            and r.received_ns > start
            and r.received_ns - r.sent_ns > QUEUE_WAIT_NS
        ]

    def held_up_by_stall(self, stall: LoopBlocked) -> list[str]:
        """Requests, other than the one that stalled the loop, that were waiting for the
        server while it was stalled. A request sent during the stall reaches Django only
        after it, so where the client's sending time is known, that counts."""
        start = stall["started_ns"]
        return self.held_up_by_span(stall["request"], start, start + stall["duration_ns"])

    def held_up_by_span(self, request: str | None, start: int, end: int) -> list[str]:
        """Requests, other than ``request``, waiting for the server between start and end
        (as held_up_by_stall says)."""
        return [
            r.id
            for r in self.requests
            if r.id != request
            and (r.sent_ns or r.received_ns) < end
            and (r.finished_ns is None or r.finished_ns > start)
        ]

    def queued_behind(self, request: str | None) -> tuple[int, list[str]]:
        """How long this request waited between being sent and being taken, and the
        requests that finished in that time (those it waited for); (0, []) if it did not
        queue or the trace cannot tell."""
        mine = self.times(request)
        if mine is None or mine.sent_ns is None:
            return 0, []
        waited = mine.received_ns - mine.sent_ns
        if waited <= QUEUE_WAIT_NS:
            return 0, []
        # The requests that finished while it waited (a trace has thousands), in the
        # trace's order.
        times, finished = self._by_finish
        between = finished[
            bisect.bisect_right(times, mine.sent_ns) : bisect.bisect_right(times, mine.received_ns)
        ]
        position = self._position
        ahead = [
            r.id
            for r in sorted(between, key=lambda r: position[id(r)])
            if r.id != mine.id and r.received_ns < mine.received_ns
        ]
        return (waited, ahead) if ahead else (0, [])

    @property
    def server_threads(self) -> str:
        """'one thread' / '4 threads in 2 workers' for a WSGI server whose model is known."""
        if self.threads is None:
            return ""
        workers = self.workers or 1
        total = plural(self.threads * workers, "thread")
        return total if workers == 1 else f"{total} in {plural(workers, 'worker')}"


def context_of(
    server: JSONObject | None,
    requests: Iterable[RequestSummary],
    events: Iterable[Event] = (),
) -> TraceContext:
    """The context of a trace: its ``server`` object, its requests, and (any of) its
    events; only await and thread.hop events are looked at."""
    server = server or {}
    interface = server.get("interface")
    awaited: set[tuple[str | None, int | None]] = set()
    hopped: set[str] = set()
    for event in events:
        if event["kind"] in AWAIT_KINDS:
            awaited.add((event["request"], event["line"]))
        elif (
            event["kind"] == kinds.THREAD_HOP
            and event["request"]
            and event.get("purpose") in DJANGO_OWN_WORK
        ):
            hopped.add(event["request"])
    return TraceContext(
        interface=interface if interface in ("asgi", "wsgi") else None,
        workers=_count(server.get("workers")),
        threads=_count(server.get("threads")),
        gil_enabled=gil if isinstance(gil := server.get("gil_enabled"), bool) else None,
        requests=tuple(
            RequestTimes(
                r["id"], r["received_ns"], r.get("finished_ns"), r.get("client_sent_ns") or None
            )
            for r in requests
        ),
        awaited_lines=frozenset(awaited),
        hopped=frozenset(hopped),
    )


DJANGO_OWN_WORK = (kinds.HOP_REQUEST_STARTED, kinds.HOP_RESPONSE_CLOSE)
AWAIT_KINDS = (kinds.AWAIT_SUSPENDED, kinds.AWAIT_RESUMED, kinds.AWAIT_RAISED)
# The kinds context_of looks at, for a source that loads events by kind.
CONTEXT_KINDS = (*AWAIT_KINDS, kinds.THREAD_HOP)


def context_of_document(document: TraceDocument) -> TraceContext:
    return context_of(document.get("server"), document["requests"], document["events"])


def _count(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None


# --- Conditions on one event ---------------------------------------------------------


def cause_of(event: SlowSpan) -> str | None:
    """Why a call.blocking or loop.blocked was slow: the recorded cause, or for traces
    without one, computing or waiting from the call's CPU share (never the GIL: only the
    tracer can tell that). None for a stall of an old trace: it did not say."""
    cause = event.get("cause")
    if cause in kinds.CAUSES:
        return str(cause)
    if event["kind"] == kinds.CALL_BLOCKING:
        return kinds.CAUSE_WAITING if event.get("waiting") else kinds.CAUSE_COMPUTING
    return None


def gil_holder(event: SlowSpan) -> str:
    """Who computed while this thread waited for the GIL, as far as the trace says."""
    request, thread = event.get("gil_request"), event.get("gil_thread")
    if request and thread:
        return f"request {request}'s code computed in {thread}"
    if request:
        return f"request {request}'s code computed"
    if thread:
        return f"{thread} computed"
    return "another thread computed"


def doing_words(event: SlowSpan) -> str:
    """What the thread did during a slow call or stall, as the trace says."""
    cause = cause_of(event)
    cpu_ns = event.get("cpu_ns")
    cpu = f" ({ms(cpu_ns)} of CPU)" if isinstance(cpu_ns, int) else ""
    if cause == kinds.CAUSE_GIL:
        return f"waiting for the GIL while {gil_holder(event)}"
    if cause == kinds.CAUSE_WAITING:
        return f"waiting{cpu}"
    if cause == kinds.CAUSE_COMPUTING:
        return f"computing{cpu}"
    if cause == kinds.CAUSE_PREEMPTED:
        return f"ready to go on but waiting for a CPU core, the machine being busy{cpu}"
    return ""


def preempted(event: Event) -> bool:
    """A stall or slow call during which the thread, computing next to nothing, waited for
    a CPU core: the machine was busy, no code of this server held it."""
    return event.get("cause") == kinds.CAUSE_PREEMPTED


def code_stalls(events: list[Event]) -> list[LoopBlocked]:
    """The loop stalls some code caused (not those of a busy machine)."""
    return [e for e in events if e["kind"] == kinds.LOOP_BLOCKED and not preempted(e)]


def culprit_words(event: LoopBlocked) -> str:
    """What held a stalled loop: the view's call, the code the stack showed, or (where the
    trace has no culprit) no more than that the tracer does not follow it."""
    if event.get("held_by"):
        where = f" at line {event['line']}" if event.get("line") else ""
        return f"{event['held_by']}(){where}"
    if event.get("culprit"):
        return f"{event['culprit']}, outside the views"
    return "code the tracer does not follow"


def on_awaited_line(event: Event, context: TraceContext) -> bool:
    return (event["request"], event["line"]) in context.awaited_lines


def loop_of(event: Event, context: TraceContext) -> str:
    """The loop an event's coroutine ran on, in words."""
    if context.wsgi:
        return f"its private loop in {event['thread']}"
    if context.asgi:
        return "the event loop"
    return "its loop"


def _span(event: CallBlocking) -> tuple[int, int]:
    end = event["t_ns"]
    return end - event["duration_ns"], end


# --- The table: per kind, the execution table's cells and the narration ----------------


@dataclass(frozen=True)
class Texts[E]:
    """The texts of one kind of event, ``E``."""

    action: Callable[[E, TraceContext], str]
    blocking: Callable[[E, TraceContext], str] = lambda event, context: NOT_SET
    narration: Callable[[E, TraceContext], str] | None = None
    awaited: Callable[[E, TraceContext], str] = lambda event, context: NOT_SET


def _received_action(event: RequestReceived, context: TraceContext) -> str:
    query = f"?{event['query']}" if event.get("query") else ""
    return f"Request received: {event['method']} {event['path']}{query}"


def _received_blocking(event: RequestReceived, context: TraceContext) -> str:
    waited, ahead = context.queued_behind(event["request"])
    if not ahead:
        return NOT_SET
    return f"Waited {ms(waited)} to be taken, until {_ids(ahead)} {were(ahead)} done"


def _received_narration(event: RequestReceived, context: TraceContext) -> str:
    query = f"?{event['query']}" if event.get("query") else ""
    text = (
        f"{_who(event)} ({event['method']} {event['path']}{query}) has reached Django. "
        "None of the view's code has run yet."
    )
    waited, ahead = context.queued_behind(event["request"])
    if ahead:
        threads = context.server_threads
        why = f" (a server of {threads})" if threads and context.wsgi else ""
        free = ": all that time it waited for a free thread" if context.wsgi else ""
        text += (
            f" It was sent {ms(waited)} earlier, but the server{why} took it only once "
            f"{_ids(ahead)} {were(ahead)} done{free}."
        )
    return text


def _check_action(event: ViewTypeChecked, context: TraceContext) -> str:
    name = event["function"]
    if event["is_async"]:
        if private_loop(event):
            return (
                f"Django checks the view: {name} is async def; under WSGI Django runs it with "
                "async_to_sync on a private loop, for this request alone"
            )
        if event.get("runs_on") == "event_loop":
            return f"Django checks the view: {name} is async def, so it runs on the event loop"
        return f"Django checks the view: {name} is async def"
    if event.get("runs_on") == "worker_thread":
        return (
            f"Django checks the view: {name} is a plain def, so Django hands it to "
            f"{event['adapter']} to run in a worker thread"
        )
    return (
        f"Django checks the view: {name} is a plain def, so Django calls it in the request's thread"
    )


def private_loop(check: ViewTypeChecked) -> bool:
    """Whether a type check says the async view runs on a loop of its own (WSGI)."""
    return bool(check["is_async"]) and (
        check.get("adapter") == "async_to_sync"
        or check.get("runs_on") == "request_thread_new_event_loop"
    )


def _check_narration(event: ViewTypeChecked, context: TraceContext) -> str:
    name = event["function"]
    if event["is_async"]:
        if private_loop(event):
            return (
                f"Django inspects {name} and finds a coroutine function (async def). This is a "
                "WSGI server, with no loop shared by requests, so Django wraps the view in "
                "async_to_sync: it runs on a private loop started for this request alone, in "
                "a thread of its own, while the request's thread waits for it. Its awaits "
                "free nothing for other requests."
            )
        if event.get("runs_on") == "event_loop":
            own = (
                " Django's own sync work for this request (its signal receivers, closing the "
                "response) still runs in a thread the request holds until it ends."
                if event["request"] in context.hopped
                else ""
            )
            return (
                f"Django inspects {name} and finds a coroutine function (async def). It awaits "
                "the view on the server's event loop, which every request shares: the view "
                f"holds the loop only between its awaits.{own}"
            )
        return f"Django inspects {name} and finds a coroutine function (async def)."
    if event.get("runs_on") == "worker_thread":
        return (
            f"Django inspects {name} and finds a plain function (def). Under ASGI it wraps it "
            f"in {event['adapter']}, so the view will run in a worker thread while the event "
            "loop stays free. The cost: this request occupies a thread until the view returns."
        )
    if context.wsgi:
        threads = context.server_threads
        model = f" This server has {threads}." if threads else ""
        return (
            f"Django inspects {name} and finds a plain function (def). This is a WSGI server: "
            "Django calls the view right in the request's own thread, which serves this "
            f"request alone from start to end.{model}"
        )
    return f"Django inspects {name}: the server calls it in the request's own thread."


def _handoff_action(event: ThreadHandoff, context: TraceContext) -> str:
    return (
        f"Handed from {event['from_thread']} to worker thread {event['to_thread']} "
        f"(waited {ms(event['waited_ns'])})"
    )


def _handoff_blocking(event: ThreadHandoff, context: TraceContext) -> str:
    if context.asgi:
        return "The event loop stays free; this request now needs a thread of its own"
    return "This request now needs a thread of its own"


def _handoff_narration(event: ThreadHandoff, context: TraceContext) -> str:
    free = " The event loop thread can serve other requests meanwhile." if context.asgi else ""
    return (
        f"The view moves from {event['from_thread']} to worker thread {event['to_thread']}"
        f" (it waited {ms(event['waited_ns'])} for it).{free}"
    )


def _started_action(event: ViewStarted, context: TraceContext) -> str:
    task = f", task {event['task']}" if event["task"] else ""
    return f"View {event['function']} starts on {event['thread']}{task}"


def _started_narration(event: ViewStarted, context: TraceContext) -> str:
    if event["task"] and context.asgi:
        place = f"the event loop thread ({event['thread']})"
    elif event["task"] and context.wsgi:
        place = f"its private loop in {event['thread']}"
    else:
        place = event["thread"]
    return f"The view's body starts running on {place}."


def _suspended_action(event: AwaitSuspended, context: TraceContext) -> str:
    return f"Pauses at line {event['line']}: await {event['awaiting']}"


def _suspended_blocking(event: AwaitSuspended, context: TraceContext) -> str:
    if context.asgi:
        return "Does not block: the event loop can run other requests meanwhile"
    if context.wsgi:
        return "Frees nothing: the request's thread waits with its private loop"
    return NOT_SET


def _suspended_narration(event: AwaitSuspended, context: TraceContext) -> str:
    text = f"At line {event['line']} the view awaits {event['awaiting']}. The coroutine pauses."
    if context.wsgi:
        return (
            f"{text} Its private loop has nothing else to run, and the request's thread "
            "waits for it: under WSGI a pause frees no thread for anyone else."
        )
    if not context.asgi:
        return text
    others = context.in_server(event["t_ns"], event["t_ns"] + 1, besides=event["request"])
    if others:
        are = "is" if len(others) == 1 else "are"
        meanwhile = f" {request_list(others)} {are} in the server and can run meanwhile."
    else:
        meanwhile = " No other request is in the server right now, but one could run."
    return f"{text} It hands the event loop back, so other code can run on it.{meanwhile}"


def _resumed_action(event: AwaitResumed, context: TraceContext) -> str:
    return f"Resumes after waiting {ms(event['duration_ns'])}"


def _resumed_narration(event: AwaitResumed, context: TraceContext) -> str:
    done = f"{event['awaiting']} is done after {ms(event['duration_ns'])}"
    if context.wsgi:
        return (
            f"{done} and the view goes on, on its private loop. The request's thread waited "
            "all that time."
        )
    if not context.asgi:
        return f"{done} and the view goes on."
    off = event.get("off_loop_ns")
    if not event.get("suspensions") or not off:
        return f"{done}, without the view ever pausing: it kept the event loop the whole time."
    return (
        f"{done} and the event loop resumes the view. For {ms(off)} of that wait the loop "
        "was free for other requests."
    )


def _raised_action(event: AwaitRaised, context: TraceContext) -> str:
    return (
        f"await {event['awaiting']} ends with {event['exception']} after {ms(event['duration_ns'])}"
    )


def _raised_narration(event: AwaitRaised, context: TraceContext) -> str:
    text = (
        f"await {event['awaiting']} did not give the view a value: after "
        f"{ms(event['duration_ns'])} it raised {event['exception']} into the view, at line "
        f"{event['line']}."
    )
    off = event.get("off_loop_ns")
    if context.asgi and event.get("suspensions") and off:
        text += f" For {ms(off)} of that wait the event loop was free for other requests."
    return text


def _blocking_action(event: CallBlocking, context: TraceContext) -> str:
    doing = doing_words(event)
    return (
        f"Line {event['line']}: {event['callable']}() holds {event['thread']} for "
        f"{ms(event['duration_ns'])}{f', {doing}' if doing else ''}"
    )


def _blocking_blocking(event: CallBlocking, context: TraceContext) -> str:
    start, end = _span(event)
    if event["on_event_loop"] and context.asgi:
        if cause_of(event) == kinds.CAUSE_GIL:
            return "The event loop's thread waits for the GIL: nothing else runs on the loop"
        if on_awaited_line(event, context):
            return "Holds the event loop until the await pauses: nothing else runs on it"
        return "Blocks the event loop: no other request can run on it"
    if context.wsgi:
        queued = context.waiting_outside(start, end, besides=event["request"])
        if queued:
            return f"Holds {event['thread']}; {_ids(queued)} {were(queued)} waiting to be taken"
        return f"Holds {event['thread']}, the thread serving this request"
    if context.asgi:
        return f"Blocks {event['thread']} only; the event loop goes on"
    return f"Holds {event['thread']}"


def _blocking_narration(event: CallBlocking, context: TraceContext) -> str:
    start, end = _span(event)
    doing = doing_words(event)
    held = (
        f"{event['callable']}() at line {event['line']} kept "
        f"{'the event loop thread' if event['on_event_loop'] and context.asgi else event['thread']}"
        f" for {ms(event['duration_ns'])}{f', {doing}' if doing else ''}."
    )
    if event["on_event_loop"] and context.asgi:
        if on_awaited_line(event, context):
            pause = (
                " The line awaits, but the view pauses only once the awaited call is set up; "
                "until then it kept the loop."
            )
        else:
            pause = " There is no await on this line, so the view did not pause."
        others = context.held_up_by_span(event["request"], start, end)
        cost = (
            f" Nothing else could run on the event loop meanwhile: {request_list(others)} "
            f"{were(others)} in the server and had to wait."
            if others
            else " Nothing else could run on the event loop meanwhile, but no other request "
            "was in the server then."
        )
        return held + pause + cost
    if context.wsgi:
        queued = context.waiting_outside(start, end, besides=event["request"])
        if queued:
            return (
                f"{held} This thread serves one request at a time: {_ids(queued)}, "
                f"sent meanwhile, {were(queued)} waiting for the server to take "
                f"{'it' if len(queued) == 1 else 'them'}."
            )
        return f"{held} Under WSGI the request holds its thread from start to end."
    if context.asgi:
        return f"{held} Only this thread was stuck; the event loop was not blocked by it."
    return held


def _stall_action(event: LoopBlocked, context: TraceContext) -> str:
    loop = "Event loop" if context.asgi or not context.wsgi else "A private loop"
    if preempted(event):
        return f"{loop} delayed {ms(event['duration_ns'])}: its thread waited for a CPU core"
    culprit = f" by {event['held_by']}()" if event.get("held_by") else f" in {culprit_words(event)}"
    where = f" at line {event['line']}" if event.get("held_by") and event.get("line") else ""
    return f"{loop} stalled for {ms(event['duration_ns'])}{culprit}{where}"


def _stall_blocking(event: LoopBlocked, context: TraceContext) -> str:
    if preempted(event):
        return "The machine's cores were busy with other work; no code here held the loop"
    if context.wsgi:
        return "Only this request's own loop waited"
    if cause_of(event) == kinds.CAUSE_GIL:
        return "The loop's thread waited for the GIL; nothing else ran on the loop"
    return "Nothing else ran on the event loop"


def _stall_narration(event: LoopBlocked, context: TraceContext) -> str:
    doing = doing_words(event)
    loop = "The event loop" if not context.wsgi else f"The private loop in {event['thread']}"
    if preempted(event):
        cpu_ns = event.get("cpu_ns")
        cpu = f" (it computed only {ms(cpu_ns)})" if isinstance(cpu_ns, int) else ""
        return (
            f"{loop} ran one piece of code for {ms(event['duration_ns'])}, but its thread was "
            f"ready to go on for most of that time and waited for a CPU core{cpu}: the "
            "machine was busy with other work, so no code of this server held the loop."
        )
    text = (
        f"{loop} ran one piece of code for {ms(event['duration_ns'])} without a break, in "
        f"{culprit_words(event)}{f', {doing}' if doing else ''}."
    )
    if context.wsgi:
        return f"{text} Only this request's own loop had to wait."
    held_up = context.held_up_by_stall(event)
    if held_up:
        return f"{text} {request_list(held_up)} {were(held_up)} in the server and had to wait."
    return f"{text} Nothing else could run on the loop, but no other request was in the server."


def _returned_action(event: ViewReturned, context: TraceContext) -> str:
    return f"View returns {event['returned']}"


def _returned_narration(event: ViewReturned, context: TraceContext) -> str:
    return f"The view returns {event['returned']}; Django now turns it into a response."


def _response_started_action(event: ResponseStarted, context: TraceContext) -> str:
    return f"Response starts: status {event['status']}"


def _response_started_narration(event: ResponseStarted, context: TraceContext) -> str:
    return f"Django hands the status ({event['status']}) and headers to the server."


def _finished_action(event: ResponseFinished, context: TraceContext) -> str:
    return (
        f"Response sent: {event['bytes']} bytes, {ms(event['duration_ns'])} after the "
        "request arrived"
    )


def _finished_narration(event: ResponseFinished, context: TraceContext) -> str:
    return (
        f"The last of {event['bytes']} bytes is handed to the server, "
        f"{ms(event['duration_ns'])} after the request arrived. This request is done."
    )


HOP_WORK = {
    kinds.HOP_REQUEST_STARTED: "Django's request_started receivers",
    kinds.HOP_VIEW: "the view",
    kinds.HOP_RESPONSE_CLOSE: "closing the response",
    kinds.HOP_DATABASE: "a database query",
}


def _hop_work(event: ThreadHop) -> str:
    """What a hop ran, as the start of a sentence: Django's work in words; other code by
    its name, which is kept as it is written (a dotted name is not capitalized)."""
    words = HOP_WORK.get(event.get("purpose") or "")
    if words:
        return f"{words[0].upper()}{words[1:]}"
    return f"{event.get('target') or 'Some code'}"


def _hop_action(event: ThreadHop, context: TraceContext) -> str:
    new = ", a new thread" if event.get("thread_new") else ""
    return (
        f"{_hop_work(event)} ran in {event['to_thread']}"
        f"{new} ({event['adapter']}, {ms(event['duration_ns'])})"
    )


def _hop_blocking(event: ThreadHop, context: TraceContext) -> str:
    if event.get("adapter") == kinds.ADAPTER_ASYNC_TO_SYNC:
        return f"{event['from_thread']} waited for it"
    if context.asgi:
        return f"{event['to_thread']} was busy; the event loop was free meanwhile"
    return f"{event['to_thread']} was busy"


def _hop_narration(event: ThreadHop, context: TraceContext) -> str:
    work = _hop_work(event)
    new = " That thread was new: it was started for this." if event.get("thread_new") else ""
    if event.get("adapter") == kinds.ADAPTER_ASYNC_TO_SYNC:
        meanwhile = f"while {event['from_thread']} waited for it"
    elif context.asgi:
        meanwhile = "while the request's coroutine awaited it, leaving the event loop free"
    else:
        meanwhile = "while the request's coroutine awaited it"
    text = (
        f"{work} ran in {event['to_thread']} through "
        f"{event['adapter']}, for {ms(event['duration_ns'])}, {meanwhile}.{new}"
    )
    if (
        context.asgi
        and event.get("adapter") == kinds.ADAPTER_SYNC_TO_ASYNC
        and event.get("purpose") in DJANGO_OWN_WORK
    ):
        text += (
            " Django runs its own plain-def work for a request in a thread kept for that "
            "request alone, so even an async view's request holds a thread: idle while the "
            "view awaits, but taken."
        )
    return text


# By kind: each kind's Texts take that kind of event. cells() and narration() look them
# up by the event's kind, which a type checker cannot follow: hence Any.
TEXTS: dict[str, Texts[Any]] = {  # type: ignore[explicit-any]
    kinds.REQUEST_RECEIVED: Texts(_received_action, _received_blocking, _received_narration),
    kinds.VIEW_TYPE_CHECKED: Texts(_check_action, narration=_check_narration),
    kinds.THREAD_HANDOFF: Texts(_handoff_action, _handoff_blocking, _handoff_narration),
    kinds.VIEW_STARTED: Texts(_started_action, narration=_started_narration),
    kinds.AWAIT_SUSPENDED: Texts(
        _suspended_action,
        _suspended_blocking,
        _suspended_narration,
        awaited=lambda event, context: str(event["awaiting"]),
    ),
    kinds.AWAIT_RESUMED: Texts(
        _resumed_action,
        narration=_resumed_narration,
        awaited=lambda event, context: str(event["awaiting"]),
    ),
    kinds.AWAIT_RAISED: Texts(
        _raised_action,
        narration=_raised_narration,
        awaited=lambda event, context: str(event["awaiting"]),
    ),
    kinds.CALL_BLOCKING: Texts(_blocking_action, _blocking_blocking, _blocking_narration),
    kinds.LOOP_BLOCKED: Texts(_stall_action, _stall_blocking, _stall_narration),
    kinds.VIEW_RETURNED: Texts(_returned_action, narration=_returned_narration),
    kinds.RESPONSE_STARTED: Texts(_response_started_action, narration=_response_started_narration),
    kinds.RESPONSE_FINISHED: Texts(_finished_action, narration=_finished_narration),
    kinds.THREAD_HOP: Texts(_hop_action, _hop_blocking, _hop_narration),
}


def cells(event: Event, context: TraceContext) -> tuple[str, str, str]:
    """The execution table's action, what is awaited, and the blocking behaviour."""
    texts = TEXTS.get(event["kind"])
    if texts is None:
        return event["kind"], NOT_SET, NOT_SET
    return (
        texts.action(event, context),
        texts.awaited(event, context),
        texts.blocking(event, context),
    )


def narration(event: Event, context: TraceContext, changed: str = "") -> str:
    """A plain-language account of one event and what it meant for the other requests.
    ``changed``: the view's variables the event changed, in words (for an await's end)."""
    texts = TEXTS.get(event["kind"])
    if texts is None or texts.narration is None:
        return f"Recorded event {event['kind']}."
    text = texts.narration(event, context)
    if changed and event["kind"] == kinds.AWAIT_RESUMED:
        text += f" It now holds {changed}."
    return text


def _who(event: Event) -> str:
    return f"Request {event['request']}" if event["request"] else "The server"


def _ids(ids: list[str]) -> str:
    return request_list(ids)[0].lower() + request_list(ids)[1:]


# --- The concept flow -------------------------------------------------------------------

# (id, branch); a branch of None is shared by both paths. Django's own hops (its signal
# receivers, closing the response, database calls) are left out: the flow follows the
# view's path only.
FLOW_NODE_IDS = (
    ("received", None),
    ("check", None),
    ("loop", "async"),
    ("await", "async"),
    ("loop-blocked", "async"),
    ("thread", "sync"),
    ("block", "sync"),
    ("returns", None),
    ("sends", None),
)
FLOW_LABELS = {
    "received": "Request received",
    "check": "Django checks the view type",
    "loop": "async def: runs on the event loop",
    "await": "await: pauses, the event loop serves others",
    "loop-blocked": "blocks the loop: everyone waits",
    "thread": "def: handed to a worker thread",
    "block": "blocking call: the thread waits",
    "returns": "View returns the response",
    "sends": "Response sent",
}
WSGI_FLOW_LABELS = {
    **FLOW_LABELS,
    "loop": "async def: async_to_sync runs it on a private loop, for this request alone",
    "await": "await: pauses; the request's thread waits",
    "loop-blocked": "blocking call: the private loop and its thread wait",
    "thread": "def: runs in the request's thread",
    "block": "blocking call: the thread waits, and no one else is served on it",
}
UNKNOWN_FLOW_LABELS = {
    **FLOW_LABELS,
    "loop": "async def: runs as a coroutine",
    "await": "await: pauses",
    "loop-blocked": "blocking call: its loop waits",
    "thread": "def: runs in a thread",
}


def flow_labels(context: TraceContext) -> dict[str, str]:
    if context.asgi:
        return FLOW_LABELS
    return WSGI_FLOW_LABELS if context.wsgi else UNKNOWN_FLOW_LABELS


def flow_node(event: Event, context: TraceContext) -> str | None:
    """The concept flow's node an event moves its request to, or None."""
    kind = event["kind"]
    if kind == kinds.VIEW_STARTED:
        return "loop" if event["task"] else "thread"
    if event["kind"] == kinds.CALL_BLOCKING:
        if not event["on_event_loop"]:
            return "block"
        # Setting up a call the line awaits is the view running on the loop, as the key
        # moments count it; a stall it caused still shows as one.
        return "loop" if on_awaited_line(event, context) else "loop-blocked"
    if event["kind"] == kinds.LOOP_BLOCKED:
        # A stall moves the view along only if the view caused it; one caused elsewhere (a
        # sync view's request can see one) moves no request along.
        return "loop-blocked" if event["held_by"] and not preempted(event) else None
    if kind == kinds.THREAD_HOP:
        return None
    return {
        kinds.REQUEST_RECEIVED: "received",
        kinds.VIEW_TYPE_CHECKED: "check",
        kinds.THREAD_HANDOFF: "thread",
        kinds.AWAIT_SUSPENDED: "await",
        kinds.AWAIT_RESUMED: "await",
        kinds.AWAIT_RAISED: "await",
        kinds.VIEW_RETURNED: "returns",
        kinds.RESPONSE_STARTED: "sends",
        kinds.RESPONSE_FINISHED: "sends",
    }.get(kind)


# --- The lab's reveal: why the requests ran as they did --------------------------------


def reveal_reasons(events: list[Event], context: TraceContext, together: bool) -> list[str]:
    """The reasons the lab gives for how a run's requests ran, from its events.
    ``together``: whether two or more views ran at the same time."""
    reasons = []
    resumed = [e for e in events if e["kind"] == kinds.AWAIT_RESUMED]
    if resumed:
        longest = max(resumed, key=lambda e: e["duration_ns"])
        paused = (
            f"The views paused {plural(len(resumed), 'time')} at an await (the longest, await "
            f"{longest['awaiting']} at line {longest['line']}, for "
            f"{longest['duration_ns'] / 1e6:.0f} ms)"
        )
        if context.wsgi:
            reasons.append(
                f"{paused}, each on a private loop of its own: under WSGI a pause frees no "
                "thread, so each request's thread waited with its view."
            )
        elif context.asgi and together:
            reasons.append(f"{paused}; while one waited, the event loop ran the others.")
        elif context.asgi:
            reasons.append(f"{paused}; while it waited, the event loop was free.")
        else:
            reasons.append(f"{paused}.")
    handoffs = {e["to_thread"] for e in events if e["kind"] == kinds.THREAD_HANDOFF}
    if handoffs:
        side = ", so their blocking calls waited side by side" if together else ""
        reasons.append(
            "Django ran each plain def view in a worker thread of its own: "
            f"{plural(len(handoffs), 'thread')}{side}."
        )
    stalls = code_stalls(events)
    if stalls:
        culprits = sorted({culprit_words(e) for e in stalls})
        gil = sum(1 for e in stalls if cause_of(e) == kinds.CAUSE_GIL)
        gil_part = (
            f" ({gil} of them waiting for the GIL while other threads computed)" if gil else ""
        )
        loop = "the event loop" if not context.wsgi else "a private loop"
        reasons.append(
            f"{loop[0].upper()}{loop[1:]} was blocked {plural(len(stalls), 'time')}, "
            f"{sum(e['duration_ns'] for e in stalls) / 1e6:.0f} ms in all, in "
            f"{', '.join(culprits)}{gil_part}: while it was, nothing else on {loop} could run."
        )
    if context.wsgi:
        threads = context.server_threads or plural(
            len({e["thread"] for e in events if e["kind"] == kinds.REQUEST_RECEIVED}), "thread"
        )
        waits = [context.queued_behind(r.id)[0] for r in context.requests]
        if any(waits):
            reasons.append(
                f"The WSGI server took the requests on {threads}, each serving one request "
                "from start to end, so the others waited to be taken (the longest wait: "
                f"{max(waits) / 1e6:.0f} ms)."
            )
        else:
            reasons.append(
                f"The WSGI server took the requests on {threads}; none had to wait for a "
                "free thread."
            )
    return reasons
