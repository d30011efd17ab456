"""The picture of the event loop and the threads at one step, in words: tracer.picture's
State turned into the lanes the player draws (templates/includes/picture.html) and the
sentences a screen reader reads instead. Every word comes from the State; where it says
"unknown", the picture says less.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tracer import events as kinds
from tracer.picture import Location, Picture, RequestState, State, ThreadState
from visualizer.traces.narration import ms, plural

# Each group of the picture lists this many requests or threads, then says how many more.
SHOWN = 8


@dataclass(frozen=True)
class Card:
    """One request or thread in a lane: who, what it does, and since when."""

    who: str
    text: str
    state: str  # a CSS class: the RequestState or ThreadState name
    request: str | None = None


@dataclass(frozen=True)
class Lane:
    id: str  # a CSS class and a stable name for tests
    title: str
    cards: list[Card]
    more: int = 0  # not listed

    @property
    def sentence(self) -> str:
        listed = "; ".join(f"{card.who}: {card.text}" for card in self.cards)
        more = f"; and {self.more} more" if self.more else ""
        return f"{self.title}: {listed}{more}."


@dataclass(frozen=True)
class LoopLane:
    state: str  # running, held, free or unknown
    text: str  # drawn after the request's name, if there is one
    request: str | None

    @property
    def sentence(self) -> str:
        who = f"{self.request} " if self.request else ""
        return f"The event loop: {who}{self.text}."


@dataclass
class LoopPicture:
    at: str  # the step's instant, since the run began
    asgi: bool
    loop: LoopLane | None  # None under WSGI
    server: str  # what serves the requests
    lanes: list[Lane] = field(default_factory=list)
    answered: int = 0

    @property
    def sentences(self) -> list[str]:
        """The picture as a few sentences, for screen readers (and the tests)."""
        said = [f"At {self.at} since the run began."]
        if self.loop is not None:
            said.append(self.loop.sentence)
        else:
            said.append(f"{self.server}; no event loop serves the requests.")
        said += [lane.sentence for lane in self.lanes if lane.cards]
        if self.answered:
            said.append(f"{plural(self.answered, 'request')} answered so far.")
        return said

    def lane(self, lane_id: str) -> Lane | None:
        return next((lane for lane in self.lanes if lane.id == lane_id), None)


def run_start_ns(picture: Picture) -> int | None:
    """When the run began: the first request sent by the client (or, without the client's
    times, taken by the server)."""
    return picture.run_start_ns


def since_start(t_ns: int | None, start_ns: int | None) -> str | None:
    if t_ns is None or start_ns is None:
        return None
    return ms(max(0, t_ns - start_ns))


def loop_picture(picture: Picture, step: int) -> LoopPicture:
    """The picture at ``step`` (1-based) of the trace ``picture`` has read."""
    state = picture.state_at(step)
    start = run_start_ns(picture)
    return describe(state, start if start is not None else state.t_ns)


def describe(state: State, start_ns: int) -> LoopPicture:
    def at(t_ns: int | None) -> str:
        when = since_start(t_ns, start_ns)
        return f", since {when}" if when is not None else ""

    asgi = state.loop is not None
    by_state: dict[str, list[RequestState]] = {}
    for request in state.requests:
        by_state.setdefault(request.state, []).append(request)
    picture = LoopPicture(
        at=since_start(state.t_ns, start_ns) or "",
        asgi=asgi,
        loop=_loop_lane(state) if state.loop is not None else None,
        server=_server(state),
        answered=len(by_state.get("answered", [])),
    )

    def lane(lane_id: str, title: str, cards: Iterable[Card]) -> None:
        cards = list(cards)
        picture.lanes.append(Lane(lane_id, title, cards[:SHOWN], max(0, len(cards) - SHOWN)))

    if asgi:
        lane(
            "ready",
            "Ready, waiting for the event loop",
            (
                Card(
                    r.request,
                    f"ready to go on{_after(r.awaiting)}{at(r.since_ns)}",
                    r.state,
                    r.request,
                )
                for r in by_state.get("ready", [])
            ),
        )
        lane(
            "awaiting",
            "Suspended at an await",
            (
                Card(r.request, _awaiting_text(r) + at(r.since_ns), r.state, r.request)
                for r in by_state.get("awaiting", []) + by_state.get("awaiting_or_ready", [])
            ),
        )
    lane(
        "threads",
        "Worker threads" if asgi else "The server's threads",
        (_thread_card(t, at(t.since_ns)) for t in state.threads),
    )
    shown_threads = {t.thread for t in state.threads}
    lane(
        "handed",
        "Handed to a thread",
        [
            Card(r.request, _handed_text(r) + at(r.since_ns), r.state, r.request)
            for r in by_state.get("waiting_for_thread", []) + by_state.get("in_thread", [])
            if r.state == "waiting_for_thread" or r.thread not in shown_threads
        ],
    )
    lane(
        "queued",
        "Not yet served" if asgi else "Queued, not yet taken by a worker",
        (
            Card(r.request, f"sent by the client{at(r.since_ns)}", r.state, r.request)
            for r in by_state.get("queued", [])
        ),
    )
    lane(
        "unknown",
        "In the server",
        (
            Card(r.request, "the trace does not tell what it does now", r.state, r.request)
            for r in by_state.get("unknown", [])
        ),
    )
    return picture


def _loop_lane(state: State) -> LoopLane:
    loop = state.loop
    assert loop is not None
    if loop.stall is not None:
        stall = loop.stall
        held_by = f" in {short_name(stall.held_by)}" if stall.held_by else ""
        cause = {
            kinds.CAUSE_COMPUTING: " (computing)",
            kinds.CAUSE_WAITING: " (waiting, not computing)",
            kinds.CAUSE_GIL: " (waiting for the GIL)",
            kinds.CAUSE_PREEMPTED: " (waiting for a CPU core)",
        }.get(stall.cause or "", "")
        held = f"holds it{held_by}{cause}, for {ms(max(0, state.t_ns - stall.since_ns))} so far"
        if stall.request is None:
            held = f"code outside the traced requests {held}"
        return LoopLane("held", f"{held}: no other task can run on it", stall.request)
    if loop.running is not None:
        return LoopLane("running", f"runs on it{_at_line(loop.location)}", loop.running)
    if loop.known:
        return LoopLane("free", "runs none of the requests' code now", None)
    return LoopLane("unknown", "may be running a request's code: the trace cannot tell", None)


def _server(state: State) -> str:
    if state.wsgi is None:
        return f"One event loop, on thread {state.loop.thread}" if state.loop else "The server"
    wsgi = state.wsgi
    if wsgi.workers is not None and wsgi.threads_per_worker is not None:
        return (
            f"WSGI: {plural(wsgi.workers, 'worker process', 'worker processes')} "
            f"\N{MULTIPLICATION SIGN} {plural(wsgi.threads_per_worker, 'thread')} each"
        )
    return f"WSGI: {plural(wsgi.processes, 'process', 'processes')} seen in the trace"


def _at_line(location: Location | None) -> str:
    if location is None or location[2] is None:
        return ""
    function = f" of {location[1]}" if location[1] else ""
    return f", at line {location[2]}{function}"


def _after(awaiting: str | None) -> str:
    return f" after {short_name(awaiting)}" if awaiting else ""


def _awaiting_text(request: RequestState) -> str:
    what = (
        f"awaits {short_name(request.awaiting)}" if request.awaiting else "awaits in Django's code"
    )
    if request.state == "awaiting_or_ready":
        what += " (it may already be ready: the trace cannot tell)"
    return what + _at_line(request.location)


def _handed_text(request: RequestState) -> str:
    what = f" {short_name(request.awaiting)}" if request.awaiting else " its code"
    if request.state == "waiting_for_thread":
        return f"waits for a thread to start{what}"
    where = f" on {request.thread}" if request.thread else ""
    return f"runs{what}{where}"


_THREAD_WORDS: dict[str, str] = {
    "running": "runs {doing} for {request}",
    "computing": "computes in {doing} for {request}",
    "blocked": "blocked in {doing} for {request}: waiting (network, disk, a sleep or a lock)",
    "gil": "waits for the GIL in {doing} for {request} while another thread computes",
    "preempted": "ready in {doing} for {request}, waiting for a CPU core",
    "waiting": "holds {request}, waiting for {doing}",
    "parked": "{request}'s own thread, parked between its uses",
    "idle": "idle, serving no request",
}


def _thread_card(thread: ThreadState, since: str) -> Card:
    text = _THREAD_WORDS[thread.state].format(
        doing=short_name(thread.doing) if thread.doing else "the request's code",
        request=thread.request or "a request",
    )
    return Card(
        thread.thread,
        text + (since if thread.state != "idle" else ""),
        thread.state,
        thread.request,
    )


def short_name(code: str) -> str:
    """A dotted name as a student reads it: ``django.dispatch.dispatcher.Signal.asend.
    <locals>.sync_send`` is Django's sync_send, ``visualizer.scenarios.scenario_views.
    sync_io`` is sync_io; an expression (``fetch_data(delay_ms)``) is left as it is."""
    if "(" in code or " " in code or "." not in code:
        return code
    last = code.rsplit(".", 1)[1]
    return f"Django's {last}" if code.startswith("django.") else last
