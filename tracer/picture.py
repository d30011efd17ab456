"""The state of the server at one step of a trace, for the picture of the event loop and the
threads: what the loop runs, who is suspended at an await or ready and waiting for it,
what each thread does, who is still waiting to be served (docs/trace-format.md).

``Picture(document)`` reads the document once; ``picture.state_at(step)`` is then cheap, and
``picture.update(document)`` reads only what a growing (live) document added. Only what the
trace shows is said: where it cannot tell, a state is ``"unknown"`` or a field None.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tracer import events as kinds
from tracer import loop_clock

Location = tuple[str | None, str | None, int | None]  # file, function, line

RequestStateName = Literal[
    "queued",  # sent by the client, not yet handed to Django by the server
    "running",  # its task runs on the event loop now
    "ready",  # ready to go on, waiting for the event loop
    "awaiting",  # suspended at an await; what it awaits is not done
    "awaiting_or_ready",  # suspended at an await; the trace cannot tell if it is ready
    "waiting_for_thread",  # its code was handed to a thread that has not started it
    "in_thread",  # a thread runs its code (the thread's state says how)
    "answered",  # its response was handed over; Django may still be closing it
    "unknown",  # in the server; the trace does not tell what it does now
]
ThreadStateName = Literal[
    "running",  # runs the request's code (computing, or waits the tracer does not time)
    "computing",  # in a slow call, computing
    "blocked",  # in a slow call, waiting (network, disk, sleep, a lock)
    "gil",  # in a slow call, waiting for the GIL while another thread computed
    "preempted",  # in a slow call, ready to run but waiting for a CPU core
    "waiting",  # waits for another thread it handed the request to (or its own loop's I/O)
    "parked",  # the request's own thread (Django's ThreadSensitiveContext), idle between uses
    "idle",  # a server thread serving no request now (WSGI)
]


@dataclass(frozen=True)
class RequestState:
    request: str
    state: RequestStateName
    since_ns: int | None  # when it entered this state, when the trace tells
    awaiting: str | None  # the awaited expression, or what a thread runs for it
    location: Location | None  # the view's line it is at, when known
    thread: str | None  # the thread that runs (or will run) its code now
    task: str | None


@dataclass(frozen=True)
class ThreadState:
    thread: str
    request: str | None
    state: ThreadStateName
    since_ns: int | None
    doing: str | None  # the code it runs for the request, or the slow call it is in


@dataclass(frozen=True)
class Stall:
    """The loop held by one callback for longer than the stall threshold."""

    request: str | None  # None: code outside any traced request
    held_by: str | None
    cause: str | None
    since_ns: int


@dataclass(frozen=True)
class LoopState:
    thread: str
    # The request whose task runs on the loop now, and its line; None when none does (or,
    # with ``known`` False, when the trace cannot tell).
    running: str | None
    location: Location | None
    known: bool
    stall: Stall | None


@dataclass(frozen=True)
class WsgiServer:
    """A WSGI server's shape: worker processes times threads, as the server was told them
    (None if not) and as seen in the trace."""

    workers: int | None
    threads_per_worker: int | None
    processes: int


@dataclass(frozen=True)
class State:
    step: int
    t_ns: int
    interface: str
    loop: LoopState | None  # None under WSGI: no event loop serves the requests
    wsgi: WsgiServer | None
    requests: tuple[RequestState, ...]  # every request in the server, or queued, at t_ns
    threads: tuple[ThreadState, ...]  # the threads doing something for a request (WSGI: all)


@dataclass
class _Span:
    start: int
    end: int
    event: Mapping[str, Any]


@dataclass
class _Request:
    id: str
    received_ns: int
    sent_ns: int | None = None
    finished_ns: int | None = None
    last_ns: int = 0
    home: str | None = None
    task: str | None = None
    steps: list[list[int]] = field(default_factory=list)
    steps_known_until: int | None = None  # None: no steps in the trace
    # Sorted by start.
    hops: list[_Span] = field(default_factory=list)
    awaits: list[_Span] = field(default_factory=list)
    calls: list[_Span] = field(default_factory=list)
    stalls: list[_Span] = field(default_factory=list)
    # (t_ns, seq, location) of its events in the view's code, sorted.
    lines: list[tuple[int, int, Location]] = field(default_factory=list)
    suspended: Mapping[str, Any] | None = None  # an await.suspended not (yet) ended


class _TimeIndex:
    """The requests by the stretch of time in which a step can show them (sent or taken
    to the last of their events or their answer): a step of a long trace looks at the few
    around it, not at every request."""

    def __init__(self, requests: list[_Request]) -> None:
        def start(request: _Request) -> int:
            sent = request.sent_ns
            return min(sent, request.received_ns) if sent is not None else request.received_ns

        ended = sorted((r for r in requests if r.finished_ns is not None), key=start)
        self.starts = [start(r) for r in ended]
        self.ended = ended
        self.longest = max(
            (
                max(r.last_ns, r.finished_ns or 0) - s
                for r, s in zip(ended, self.starts, strict=True)
            ),
            default=0,
        )
        self.open = [r for r in requests if r.finished_ns is None]
        self.open_starts = [start(r) for r in self.open]
        self.first_ns = min(
            [t for r in requests for t in (r.sent_ns, r.received_ns) if t], default=None
        )
        self.homes = {r.home for r in requests if r.home}

    def around(self, t: int) -> list[_Request]:
        """Every request whose stretch may hold ``t`` (and a few more)."""
        low = bisect.bisect_left(self.starts, t - self.longest)
        high = bisect.bisect_right(self.starts, t)
        found = self.ended[low:high]
        found += [r for r, s in zip(self.open, self.open_starts, strict=True) if s <= t]
        return found


def _insert(spans: list[_Span], span: _Span) -> None:
    bisect.insort(spans, span, key=lambda s: s.start)


def _covering(spans: list[_Span], t: int, back: int = 8) -> _Span | None:
    """The latest-starting span with start <= t <= end (nested spans: the innermost)."""
    index = bisect.bisect_right(spans, t, key=lambda s: s.start)
    for span in reversed(spans[max(0, index - back) : index]):
        if span.end >= t:
            return span
    return None


class Picture:
    """A trace document read for ``state_at``."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        server = document.get("server") or {}
        self.interface: str = server.get("interface", "asgi")
        self.server = server
        self.events: list[Mapping[str, Any]] = []
        self.requests: dict[str, _Request] = {}
        self.loop_thread: str | None = None
        self._stalls: list[_Span] = []
        # thread -> its hops (any request), sorted by start
        self._thread_hops: dict[str, list[_Span]] = {}
        self._threads: dict[str, None] = {}  # every thread seen, in order
        self._index: _TimeIndex | None = None
        self.update(document)

    # -- reading ------------------------------------------------------------------------

    def update(self, document: Mapping[str, Any]) -> None:
        """Read what ``document`` (this one, grown) added since the last read."""
        self._index = None
        for summary in document["requests"]:
            self._summary(summary)
        new = document["events"][len(self.events) :]
        for event in new:
            self._event(event)
        self.events.extend(new)

    def _request(self, request_id: str, received_ns: int) -> _Request:
        request = self.requests.get(request_id)
        if request is None:
            request = self.requests[request_id] = _Request(request_id, received_ns)
        return request

    def _summary(self, summary: Mapping[str, Any]) -> None:
        if type(summary.get("received_ns")) is not int or "id" not in summary:
            return
        request = self._request(summary["id"], summary["received_ns"])
        sent = summary.get("client_sent_ns")
        request.sent_ns = sent if type(sent) is int and sent <= request.received_ns else None
        finished = summary.get("finished_ns")
        request.finished_ns = finished if type(finished) is int else None
        steps = summary.get("loop_steps")
        if self.interface == "asgi" and isinstance(steps, list) and "loop_ns" in summary:
            request.steps = steps
            if len(steps) >= loop_clock.MAX_STEPS:
                request.steps_known_until = steps[-1][2]
            else:
                # Every step to the response (or, still running, to the latest event).
                request.steps_known_until = request.finished_ns or max(
                    request.last_ns, steps[-1][2] if steps else 0
                )

    def _event(self, event: Mapping[str, Any]) -> None:
        kind, t = event["kind"], event["t_ns"]
        for name in ("thread", "to_thread"):
            if event.get(name):
                self._threads.setdefault(event[name], None)
        if kind == kinds.LOOP_BLOCKED:
            span = _Span(event["started_ns"], t, event)
            _insert(self._stalls, span)
        request_id = event["request"]
        if request_id is None:
            return
        request = self.requests.get(request_id) or self._request(request_id, t)
        request.last_ns = max(request.last_ns, t)
        if request.steps_known_until is not None and request.finished_ns is None:
            request.steps_known_until = max(request.steps_known_until, t)
        if event.get("line") is not None and kind != kinds.LOOP_BLOCKED:
            location = (event["file"], event["function"], event["line"])
            bisect.insort(request.lines, (t, event["seq"], location), key=lambda x: x[:2])
        if kind == kinds.REQUEST_RECEIVED:
            request.home, request.task = event["thread"], event["task"]
            if self.interface == "asgi" and event["task"] is not None and not self.loop_thread:
                self.loop_thread = event["thread"]
        elif kind == kinds.THREAD_HOP:
            called = event.get("called_ns")
            start = called if type(called) is int else event["started_ns"]
            _insert(request.hops, _Span(start, t, event))
            hops = self._thread_hops.setdefault(event["to_thread"], [])
            _insert(
                hops, _Span(event["started_ns"], event["started_ns"] + event["duration_ns"], event)
            )
        elif kind == kinds.AWAIT_SUSPENDED:
            request.suspended = event
        elif kind in (kinds.AWAIT_RESUMED, kinds.AWAIT_RAISED):
            request.suspended = None
            _insert(request.awaits, _Span(t - event["duration_ns"], t, event))
        elif kind == kinds.CALL_BLOCKING:
            _insert(request.calls, _Span(t - event["duration_ns"], t, event))
        elif kind == kinds.LOOP_BLOCKED:
            _insert(request.stalls, _Span(event["started_ns"], t, event))

    def _time_index(self) -> _TimeIndex:
        if self._index is None:
            self._index = _TimeIndex(list(self.requests.values()))
        return self._index

    @property
    def run_start_ns(self) -> int | None:
        """When the run began: the first request sent by its client (or, without the
        client's times, taken by the server)."""
        return self._time_index().first_ns

    # -- the state at a step ------------------------------------------------------------

    def state_at(self, step: int, t_ns: int | None = None) -> State:
        """The state as step ``step`` (1-based, the event with that ``seq``; clamped)
        happened: at its event's ``t_ns`` (the end of a span), or at ``t_ns`` if given.
        Steps are in recorded order: a ``request.received``, recorded once the view is
        known, takes the picture back to the moment the request arrived."""
        if not self.events:
            raise ValueError("the trace has no events")
        step = max(1, min(step, len(self.events)))
        event = self.events[step - 1]
        t = event["t_ns"] if t_ns is None else t_ns
        asgi = self.interface == "asgi"
        states = []
        for request in self._time_index().around(t):
            state = self._request_state(request, t, event) if asgi else self._wsgi_state(request, t)
            if state is not None:
                states.append(state)
        states.sort(key=lambda s: (self.requests[s.request].received_ns, s.request))
        threads = self._thread_states(t, states) if asgi else self._wsgi_threads(t, states)
        return State(
            step=step,
            t_ns=t,
            interface=self.interface,
            loop=self._loop_state(t, event, states) if asgi else None,
            wsgi=None if asgi else self._wsgi_server(),
            requests=tuple(states),
            threads=threads,
        )

    def _request_state(
        self, request: _Request, t: int, event: Mapping[str, Any]
    ) -> RequestState | None:
        if not self._in_server(request, t):
            return self._outside(request, t)

        def state(
            name: RequestStateName, since: int | None, awaiting: str | None = None,
            thread: str | None = None,
        ) -> RequestState:  # fmt: skip
            location = self._location(request, t)
            return RequestState(request.id, name, since, awaiting, location, thread, request.task)

        measured = request.steps_known_until is not None and t <= request.steps_known_until
        if measured:
            index = bisect.bisect_right(request.steps, t, key=lambda s: s[0]) - 1
            if index >= 0:
                ready, started, ended = request.steps[index]
                if started <= t <= ended:
                    return state("running", started, self._awaited(request, t))
                if ready <= t < started:
                    return state("ready", ready, self._awaited(request, t))
        elif self._on_loop_now(request, t, event):
            return state("running", None, self._awaited(request, t))
        hop = _covering(request.hops, t)
        if hop is not None:
            span, ran_from = hop.event, hop.event["started_ns"]
            ran_until = ran_from + span["duration_ns"]
            if t < ran_from:
                return state("waiting_for_thread", hop.start, span["target"], span["to_thread"])
            if t <= ran_until:
                return state("in_thread", ran_from, span["target"], span["to_thread"])
            # The thread has answered; the answer waits for the loop to resume the task.
            return state("ready", ran_until, span["target"])
        awaited = self._open_await(request, t)
        if awaited is not None:
            return state("awaiting" if measured else "awaiting_or_ready", *awaited)
        if measured:
            index = bisect.bisect_right(request.steps, t, key=lambda s: s[0]) - 1
            since = request.steps[index][2] if index >= 0 else None
            return state("awaiting", since)  # at an await of Django's own code
        return state("unknown", None)

    @staticmethod
    def _in_server(request: _Request, t: int) -> bool:
        finished = request.finished_ns
        return request.received_ns <= t and (finished is None or t <= finished)

    @staticmethod
    def _outside(request: _Request, t: int) -> RequestState | None:
        """Its state when it is not in the server at ``t``: still queued, or answered
        (None: neither, or nothing more of it is in the trace)."""
        if t < request.received_ns:
            if request.sent_ns is not None and request.sent_ns <= t:
                return RequestState(request.id, "queued", request.sent_ns, None, None, None, None)
            return None
        if t > request.last_ns:
            return None
        return RequestState(
            request.id, "answered", request.finished_ns, None, None, None, request.task
        )

    def _on_loop_now(self, request: _Request, t: int, event: Mapping[str, Any]) -> bool:
        """Without its steps: the request runs on the loop at ``t`` if the step's own event
        is its and happened there, or one of its stalls or slow calls on the loop spans
        ``t``."""
        if event["request"] == request.id and request.home == self.loop_thread:
            on_loop = event["thread"] == self.loop_thread and event["task"] is not None
            if event["kind"] == kinds.THREAD_HOP:
                on_loop = event["from_thread"] == self.loop_thread
            if on_loop and event["kind"] != kinds.LOOP_BLOCKED:
                return True
        if _covering(request.stalls, t) is not None:
            return True
        call = _covering(request.calls, t)
        return call is not None and bool(call.event["on_event_loop"])

    def _open_await(self, request: _Request, t: int) -> tuple[int, str] | None:
        """The view's await spanning ``t`` (or still open): when it began, what it awaits."""
        span = _covering(request.awaits, t)
        if span is not None:
            return span.start, span.event["awaiting"]
        open_await = request.suspended
        if open_await is not None and open_await["t_ns"] <= t:
            return open_await["t_ns"], open_await["awaiting"]
        return None

    def _awaited(self, request: _Request, t: int) -> str | None:
        """What the request's task waits for, or last waited for, around ``t``: the view's
        await, or the code a thread ran for it."""
        awaited = self._open_await(request, t)
        if awaited is not None:
            return awaited[1]
        hop = _covering(request.hops, t)
        return hop.event["target"] if hop is not None else None

    def _location(self, request: _Request, t: int) -> Location | None:
        """Where in the view's code the request is at ``t``: in a slow call, the call's line,
        or the line of the helper the stall's stack showed running inside it; otherwise the
        line of its latest event."""
        call = _covering(request.calls, t)
        if call is not None and call.start < t:
            where = call.event
            # Inside the call (not at its end), the stall's stack may show a deeper line.
            stall = _covering(request.stalls, t) if t < call.end else None
            if stall is not None and stall.start <= call.start and stall.event.get("line"):
                where = stall.event
            return (where["file"], where["function"], where["line"])
        index = bisect.bisect_right(request.lines, t, key=lambda x: x[0]) - 1
        return request.lines[index][2] if index >= 0 else None

    def _loop_state(
        self, t: int, event: Mapping[str, Any], states: list[RequestState]
    ) -> LoopState | None:
        if self.loop_thread is None:
            return None
        running = [s for s in states if s.state == "running"]
        if len(running) > 1:  # the trace's own event decides
            running = [s for s in running if s.request == event["request"]] or running[:1]
        # Known when every request before its answer has its steps in the trace.
        known = all(
            r.steps_known_until is not None and t <= r.steps_known_until
            for r in self._time_index().around(t)
            if r.received_ns <= t <= (r.finished_ns if r.finished_ns is not None else r.last_ns)
        )
        stall_span = _covering(self._stalls, t)
        stall = None
        if stall_span is not None:
            stalled = stall_span.event
            stall = Stall(
                stalled["request"], stalled["held_by"], stalled.get("cause"), stall_span.start
            )
        return LoopState(
            thread=self.loop_thread,
            running=running[0].request if running else None,
            location=running[0].location if running else None,
            known=known or bool(running),
            stall=stall,
        )

    def _thread_states(self, t: int, states: list[RequestState]) -> tuple[ThreadState, ...]:
        """Under ASGI: each thread running a request's code now, and each request's own
        thread parked between its uses."""
        found = []
        for thread, hops in self._thread_hops.items():
            span = _covering(hops, t)
            if span is not None:
                found.append(self._busy_thread(thread, span, t))
                continue
            parked = self._parked_for(hops, t)
            if parked is not None:
                found.append(ThreadState(thread, parked[0], "parked", parked[1], None))
        return tuple(found)

    def _busy_thread(self, thread: str, span: _Span, t: int) -> ThreadState:
        hop = span.event
        request = self.requests.get(hop["request"])
        call = _covering(request.calls, t) if request is not None else None
        if call is not None and call.event["thread"] == thread:
            return ThreadState(
                thread, hop["request"], _call_state(call.event), call.start, call.event["callable"]
            )
        if hop["adapter"] == kinds.ADAPTER_ASYNC_TO_SYNC and request is not None:
            awaited = self._open_await(request, t)
            if awaited is not None:  # its own loop waits at the view's await
                return ThreadState(thread, hop["request"], "waiting", awaited[0], awaited[1])
        return ThreadState(thread, hop["request"], "running", span.start, hop["target"])

    def _parked_for(self, hops: list[_Span], t: int) -> tuple[str, int] | None:
        """The request a thread is parked for at ``t``: the thread ran sync_to_async hops
        of that request only, before and after ``t`` (Django's per-request thread)."""
        index = bisect.bisect_right(hops, t, key=lambda s: s.start)
        if index == 0 or index == len(hops):
            return None
        before, after = hops[index - 1], hops[index]
        owner = before.event["request"]
        if (
            after.event["request"] == owner
            and before.event["adapter"] == after.event["adapter"] == kinds.ADAPTER_SYNC_TO_ASYNC
            and all(h.event["request"] == owner for h in hops)
        ):
            return owner, before.end
        return None

    # -- WSGI -----------------------------------------------------------------------------

    def _wsgi_state(self, request: _Request, t: int) -> RequestState | None:
        if not self._in_server(request, t):
            return self._outside(request, t)
        awaited = self._open_await(request, t)
        return RequestState(
            request.id,
            "in_thread",
            request.received_ns,
            awaited[1] if awaited else None,
            self._location(request, t),
            request.home,
            request.task,
        )

    def _wsgi_threads(self, t: int, states: list[RequestState]) -> tuple[ThreadState, ...]:
        """Every request thread seen in the trace: serving a request now (and how), or idle."""
        serving = {s.thread: s for s in states if s.state == "in_thread" and s.thread}
        homes = self._time_index().homes
        found = []
        for thread in self._threads:
            if thread not in homes:
                continue
            state = serving.get(thread)
            if state is None:
                found.append(ThreadState(thread, None, "idle", None, None))
                continue
            request = self.requests[state.request]
            hop = _covering(request.hops, t)
            if hop is not None and hop.event["started_ns"] <= t:
                found.append(
                    ThreadState(thread, request.id, "waiting", hop.start, hop.event["target"])
                )
                found.append(self._busy_thread(hop.event["to_thread"], hop, t))
                continue
            call = _covering(request.calls, t)
            if call is not None and call.event["thread"] == thread:
                found.append(
                    ThreadState(
                        thread, request.id, _call_state(call.event), call.start,
                        call.event["callable"],
                    )
                )  # fmt: skip
            else:
                found.append(ThreadState(thread, request.id, "running", request.received_ns, None))
        return tuple(found)

    def _wsgi_server(self) -> WsgiServer:
        processes = self.server.get("processes")
        workers, threads = self.server.get("workers"), self.server.get("threads")
        return WsgiServer(
            workers=workers if type(workers) is int else None,
            threads_per_worker=threads if type(threads) is int else None,
            processes=processes if type(processes) is int else 1,
        )


def _call_state(call: Mapping[str, Any]) -> ThreadStateName:
    cause = call.get("cause")
    if cause is None:
        return "blocked" if call["waiting"] else "computing"
    return {
        kinds.CAUSE_WAITING: "blocked",
        kinds.CAUSE_GIL: "gil",
        kinds.CAUSE_PREEMPTED: "preempted",
    }.get(cause, "computing")  # type: ignore[return-value]


def state_at(document: Mapping[str, Any], step: int) -> State:
    """The state at one step (reads the whole document: keep a Picture to ask for many)."""
    return Picture(document).state_at(step)
