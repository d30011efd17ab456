"""The concurrency lab: many real requests at once on a chosen server, and what they did.

Every figure here is computed from the recorded trace of the run.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.urls import reverse

from tracer.django_integration import get_tracer
from tracer.events import Event, TraceDocument
from visualizer.models import Trace
from visualizer.narration import code_stalls, context_of_document, plural, reveal_reasons
from visualizer.run_state import tracked_run
from visualizer.runs import (
    ClientTimings,
    RunRequest,
    new_recording_id,
    record_run,
    send_requests,
    with_client_timings,
)
from visualizer.scenarios import Scenario
from visualizer.server_process import GunicornServer
from visualizer.steps import whole_number
from visualizer.threads import ThreadSummary, thread_summary

logger = logging.getLogger(__name__)

MAX_LAB_REQUESTS = 200
MAX_THREADS = 64
MAX_WORKERS = 8


# The lab form's numbers when nothing else is asked for.
NUMBER_DEFAULTS = {"requests": 20, "delay_ms": 300, "work": 20000, "workers": 1, "threads": 1}
SERVERS = ("asgi", "wsgi")


@dataclass(frozen=True)
class LabRun:
    """What the student set up, checked."""

    scenario: Scenario
    run: RunRequest
    server: str  # "asgi" or "wsgi"
    threads: int
    workers: int = 1

    @classmethod
    def from_values(cls, scenario: Scenario, values: Mapping[str, Any]) -> LabRun:
        requests = _number(values, "requests", 1, MAX_LAB_REQUESTS, NUMBER_DEFAULTS["requests"])
        # One value a key (a QueryDict holds lists); the request count is checked above.
        flat = {key: values.get(key) for key in values}
        run = RunRequest.from_values(scenario, {**flat, "requests": 1})
        server = values.get("server") or SERVERS[0]
        if server not in SERVERS:
            raise ValueError("server must be asgi or wsgi.")
        threads = _number(values, "threads", 1, MAX_THREADS, NUMBER_DEFAULTS["threads"])
        workers = _number(values, "workers", 1, MAX_WORKERS, NUMBER_DEFAULTS["workers"])
        return cls(scenario, RunRequest(requests, run.params), server, threads, workers)

    @property
    def server_label(self) -> str:
        if self.server == "asgi":
            return "ASGI (Daphne)"
        return (
            f"WSGI (gunicorn, {plural(self.workers, 'worker')} of "
            f"{plural(self.threads, 'thread')} each)"
        )


def form_values(values: Mapping[str, Any], scenario: Scenario) -> dict[str, Any]:
    """The lab form's starting values: the defaults, or those given in the page's URL (a
    link can set up a run), where they are valid."""
    server = values.get("server")
    form: dict[str, Any] = {
        "scenario": scenario.slug,
        "server": server if server in SERVERS else SERVERS[0],
    }
    for name, default in NUMBER_DEFAULTS.items():
        number = whole_number(values.get(name))
        form[name] = number if number is not None else default
    return form


def setup_of(document: Mapping[str, Any]) -> dict[str, str]:
    """The lab form's values that would run this recording again (as far as the trace
    tells): its scenario, request count, server and the view's parameters."""
    values = {
        "scenario": (document.get("scenario") or {}).get("slug") or "",
        "requests": str(len(document["requests"])),
        "server": document["server"].get("interface") or "asgi",
    }
    if document["requests"]:
        query = urlsplit(document["requests"][0]["url"]).query
        values |= {name: value for name, value in parse_qsl(query) if name in NUMBER_DEFAULTS}
    return values


def _number(values: Mapping[str, Any], name: str, low: int, high: int, default: int) -> int:
    raw = values.get(name)
    if raw in (None, ""):
        return default
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number from {low} to {high}.") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}.")
    return number


async def run_lab(
    lab: LabRun,
    asgi_base_url: str,
    recording_id: str | None = None,
    progress: ClientTimings | None = None,
) -> TraceDocument:
    """Fire the requests for real and return the recorded trace, with the client's view of
    each request, stored. ASGI runs go to this server; WSGI runs to a gunicorn process
    started for the run (same database). ``progress`` fills as the requests go."""
    recording_id = recording_id or new_recording_id()
    # Stored at once as recording, then as the run ends: complete, or interrupted.
    async with tracked_run(recording_id, lab.scenario):
        if lab.server == "asgi":
            document = await record_run(
                asgi_base_url,
                lab.scenario,
                requests=lab.run.requests,
                params=lab.run.params,
                recording_id=recording_id,
                progress=progress,
            )
        else:
            document = await run_on_gunicorn(lab, recording_id, progress)
        await database_sync_to_async(Trace.store)(
            document, source=Trace.Source.RECORDED, status=Trace.Status.COMPLETE
        )
    return document


async def run_on_gunicorn(
    lab: LabRun, recording_id: str, progress: ClientTimings | None
) -> TraceDocument:
    """A WSGI run: on a gunicorn server started for it (same database), stopped after."""
    requests, params = lab.run.requests, lab.run.params
    env = {
        "TRACING_ENABLED": "true",
        "DATA_DIR": str(settings.DATA_DIR),
        # What gunicorn stores of the run stays "recording": only this process knows when
        # the run is over.
        "TRACE_PARTIAL_RUNS": "true",
    }
    # This process's database is migrated: gunicorn starts seconds sooner without.
    server = GunicornServer(env, workers=lab.workers, threads=lab.threads, migrate=False)
    await asyncio.to_thread(server.start)
    try:
        if lab.workers == 1:
            return await record_run(
                server.base_url,
                lab.scenario,
                requests=requests,
                params=params,
                recording_id=recording_id,
                progress=progress,
            )
        timings = await send_requests(
            server.base_url,
            lab.scenario,
            recording_id,
            requests=requests,
            params=params,
            progress=progress,
        )
        merged = await database_sync_to_async(collect_parts)(recording_id, requests)
        return with_client_timings(merged, timings)
    finally:
        await asyncio.to_thread(server.stop)


@dataclass
class LabProgress:
    """A lab run going on in this server: what its client has seen so far, and how it
    ended (``finished``, or ``error`` saying why not)."""

    lab: LabRun
    recording_id: str
    results_url: str
    client: ClientTimings = field(default_factory=dict)
    finished: bool = False
    error: str = ""
    task: asyncio.Task[None] | None = None

    @property
    def poll_url(self) -> str:
        """Where the page asks how the run is going; it carries the results page's query,
        so that another server process (which does not know this run) can send the page
        to the results once they are stored."""
        query = self.results_url.partition("?")[2]
        return f"{reverse('lab-progress', args=[self.recording_id])}?{query}"

    @property
    def answered(self) -> int:
        return sum(1 for _, done in self.client.values() if done)

    def document(self) -> dict[str, Any]:
        """The run so far: under ASGI the server's events from this process's tracer, with
        the client's times; under WSGI (the events stay in the gunicorn process until the
        run ends) the client's view of each request only. Not a trace document: it also
        holds the requests the server has not seen yet, and the run's ``interface``."""
        recording = get_tracer().store.get(self.recording_id) if self.lab.server == "asgi" else None
        so_far: Mapping[str, Any] = (
            recording.document() if recording else {"requests": [], "events": []}
        )
        events = so_far["events"]
        requests = [dict(r) for r in so_far["requests"]]
        seen = set()
        for request in requests:
            sent, done = self.client.get(request.get("client_ref") or "", (0, 0))
            seen.add(request.get("client_ref"))
            if sent:
                request["client_sent_ns"] = sent
            if done:
                request["client_done_ns"] = done
        for ref, (sent, done) in self.client.items():
            if ref not in seen:
                requests.append(
                    {
                        "id": ref,
                        "method": "GET",
                        "url": self.lab.scenario.run_url,
                        "received_ns": sent,
                        "finished_ns": done or None,
                        "client_sent_ns": sent,
                        "client_done_ns": done or None,
                        "not_seen_by_server": True,
                    }
                )
        return {"requests": requests, "events": events, "interface": self.lab.server}


# Runs started from the lab page, by recording id; the latest few are kept.
RUNNING: dict[str, LabProgress] = {}
KEEP_RUNS = 32


def start_lab(lab: LabRun, asgi_base_url: str, recording_id: str, results_url: str) -> LabProgress:
    """Start a lab run in the background of this server's event loop; follow it with
    RUNNING[recording_id]."""
    progress = LabProgress(lab, recording_id, results_url)

    async def run() -> None:
        try:
            await run_lab(lab, asgi_base_url, recording_id, progress.client)
        except Exception as error:  # the page must hear of any failure, not wait for it
            logger.exception("lab run %s failed", recording_id)
            progress.error = f"{error.__class__.__name__}: {error}"
        finally:
            progress.finished = True

    progress.task = asyncio.create_task(run())
    RUNNING[recording_id] = progress
    for old in [key for key, value in RUNNING.items() if value.finished][:-KEEP_RUNS]:
        del RUNNING[old]
    return progress


def collect_parts(recording_id: str, requests: int, timeout: float = 15) -> TraceDocument:
    """One document from the parts the WSGI workers stored of a run (each stores its own
    share, as ``<id>-w<pid>``, once it has been quiet for a moment); the parts are removed."""
    deadline = time.monotonic() + timeout
    while True:
        parts = list(Trace.objects.filter(recording_id__startswith=f"{recording_id}-w"))
        if sum(part.request_count for part in parts) >= requests or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not parts:
        raise RuntimeError("the WSGI workers stored no trace of the run")
    merged = merge_parts(recording_id, [part.document() for part in parts])
    Trace.objects.filter(pk__in=[part.pk for part in parts]).delete()
    return merged


def merge_parts(recording_id: str, documents: list[TraceDocument]) -> TraceDocument:
    """Merge documents of one run recorded by several processes: requests by arrival,
    events by time (keeping each process's own order), numbered again. Thread names are
    prefixed with their process's tag (every worker has its own MainThread)."""
    ordered = sorted(
        documents, key=lambda d: min((r["received_ns"] for r in d["requests"]), default=0)
    )
    events = heapq.merge(
        *([_in_process(e, d["id"].rsplit("-", 1)[-1]) for e in d["events"]] for d in ordered),
        key=lambda e: e["t_ns"],
    )
    first = ordered[0]
    return {
        **first,
        "id": recording_id,
        "server": {**first["server"], "pid": None, "processes": len(documents)},
        "requests": sorted(
            (r for d in ordered for r in d["requests"]), key=lambda r: r["received_ns"]
        ),
        "events": [_numbered(event, seq) for seq, event in enumerate(events, start=1)],
    }


def _in_process(event: Event, tag: str) -> Event:
    named = {key: f"{tag} {event[key]}" for key in THREAD_FIELDS if event.get(key)}  # type: ignore[literal-required]
    # The same kind of event, its thread names tagged.
    return cast(Event, {**event, **named})


def _numbered(event: Event, seq: int) -> Event:
    numbered = event.copy()
    numbered["seq"] = seq
    return numbered


THREAD_FIELDS = ("thread", "from_thread", "to_thread")


def _sent(request: Mapping[str, Any]) -> int:
    """When the request left the client, or (no client timing) reached the server."""
    return int(request.get("client_sent_ns") or request["received_ns"])


def _done(request: Mapping[str, Any]) -> int:
    return int(request.get("client_done_ns") or request["finished_ns"])


@dataclass(frozen=True)
class Metrics:
    requests: int
    wall_ms: float
    throughput: float  # requests per second
    p50_ms: float
    p95_ms: float
    max_ms: float
    peak_concurrency: int
    # OS threads the requests used: the threads their views started on and those their
    # code hopped to (Django's request_started receivers, response.close(), the ORM...).
    threads_used: int
    loop_blocked_ms: float
    tracer_ms: float | None  # the tracer's own time, summed over requests (None: unknown)
    tracer_share: float | None  # ... as a share of the requests' time in the server
    # The threads views started on (what threads_used counted before hops were traced).
    view_threads: int = 0
    # The server process's most OS threads during the run (None: not sampled).
    peak_os_threads: int | None = None
    thread_use: ThreadSummary | None = None

    @property
    def tracer_percent(self) -> float | None:
        return self.tracer_share * 100 if self.tracer_share is not None else None


def lab_metrics(document: Mapping[str, Any]) -> Metrics:
    """The run's figures, from its trace: each request as its client saw it, from sending
    to the whole answer (including any wait before the server took it); where the trace
    has no client timings, from arrival at the server to the last byte."""
    requests = [r for r in document["requests"] if r["finished_ns"] is not None]
    if not requests:
        return Metrics(0, 0, 0, 0, 0, 0, 0, 0, 0, None, None)
    start = min(_sent(r) for r in requests)
    end = max(_done(r) for r in requests)
    durations = sorted((_done(r) - _sent(r)) / 1e6 for r in requests)
    wall_ms = (end - start) / 1e6
    events = document["events"]
    tracer_ns = [r["tracer_ns"] for r in requests if "tracer_ns" in r]
    in_server_ns = sum(r["duration_ns"] for r in requests)
    view_threads = {e["thread"] for e in events if e["kind"] == "view.started"}
    threads = thread_summary(events, requests, document.get("thread_samples"))
    held = {thread.thread for request in threads.requests for thread in request.threads}
    return Metrics(
        requests=len(requests),
        wall_ms=wall_ms,
        throughput=len(requests) / (wall_ms / 1000) if wall_ms else 0,
        p50_ms=statistics.median(durations),
        p95_ms=_percentile(durations, 95),
        max_ms=durations[-1],
        peak_concurrency=peak(requests),
        threads_used=len(view_threads | held),
        # A busy machine's delays of the loop are not the code's (narration.code_stalls).
        loop_blocked_ms=sum(e["duration_ns"] for e in code_stalls(events)) / 1e6,
        tracer_ms=sum(tracer_ns) / 1e6 if tracer_ns else None,
        tracer_share=sum(tracer_ns) / in_server_ns if tracer_ns and in_server_ns else None,
        view_threads=len(view_threads),
        peak_os_threads=threads.peak_os_threads,
        thread_use=threads,
    )


def _percentile(ordered: list[float], percent: int) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def peak(requests: Sequence[Mapping[str, Any]]) -> int:
    """The most requests in the server at one moment (arrival to last byte)."""
    return most_overlapping([(r["received_ns"], r["finished_ns"]) for r in requests])


@dataclass(frozen=True)
class Segment:
    phase: str  # waiting, loop, suspended, thread, blocked, response
    label: str
    left: float  # percent of the timeline
    width: float


@dataclass(frozen=True)
class Lane:
    label: str
    segments: list[Segment]
    kind: str = "request"  # "request", "loop" or "thread"


PHASE_LABELS = {
    "waiting": "waiting to be served",
    "loop": "running on the event loop",
    "suspended": "suspended on an await",
    "thread": "running in a worker thread",
    "blocked": "blocked",
    "stall": "event loop stalled",
    "pending": "sent, no answer yet",
}


def timeline(document: Mapping[str, Any], now_ns: int | None = None) -> tuple[list[Lane], float]:
    """One lane per request, then the event loop and each worker thread, with the phases
    the events show; positions in percent of the run's length (also returned, in ms).
    For a run still going on, ``now_ns`` is where the unfinished phases end."""
    requests = [r for r in document["requests"] if r["finished_ns"] is not None or now_ns]
    if not requests:
        return [], 0.0

    def end_of(request: dict[str, Any]) -> int:
        finished = request.get("client_done_ns") or request["finished_ns"]
        return int(finished) if finished else now_ns or 0

    origin = min(_sent(r) for r in requests)
    span = max(max(end_of(r) for r in requests) - origin, 1)

    def segment(phase: str, start: int, end: int) -> Segment:
        left = (start - origin) / span * 100
        width = max((end - start) / span * 100, 0.15)
        return Segment(phase, f"{PHASE_LABELS[phase]}: {(end - start) / 1e6:.1f} ms", left, width)

    by_request: dict[str, list[dict[str, Any]]] = {}
    for event in document["events"]:
        by_request.setdefault(event["request"] or "", []).append(event)
    lanes = []
    thread_spans: dict[str, list[Segment]] = {}
    for request in requests:
        segments: list[Segment] = []
        blocked: list[Segment] = []  # drawn last, on top of the phase they interrupt
        events = by_request.get(request["id"], [])
        started = next((e for e in events if e["kind"] == "view.started"), None)
        returned = next((e for e in events if e["kind"] == "view.returned"), None)
        view_end = returned["t_ns"] if returned else now_ns
        if request.get("not_seen_by_server"):
            # Sent, and not (yet) in this process's trace.
            phase = "pending" if document.get("interface") == "wsgi" else "waiting"
            segments.append(segment(phase, _sent(request), end_of(request)))
        elif started and view_end:
            segments.append(segment("waiting", _sent(request), started["t_ns"]))
            on_loop = started["task"] is not None
            running_from = started["t_ns"]
            suspended_at = None
            for event in events:
                if event["kind"] == "await.suspended":
                    suspended_at = event["t_ns"]
                if event["kind"] == "await.resumed":
                    pause_start = event["t_ns"] - event["duration_ns"]
                    segments.append(segment("loop", running_from, pause_start))
                    segments.append(segment("suspended", pause_start, event["t_ns"]))
                    running_from = event["t_ns"]
                    suspended_at = None
                if event["kind"] == "call.blocking":
                    call_start = event["t_ns"] - event["duration_ns"]
                    blocked.append(segment("blocked", call_start, event["t_ns"]))
            phase = "loop" if on_loop else "thread"
            if returned is None and suspended_at is not None:
                segments.append(segment(phase, running_from, suspended_at))
                segments.append(segment("suspended", suspended_at, view_end))
            else:
                segments.append(segment(phase, running_from, view_end))
            segments.extend(blocked)
            if not on_loop:
                thread_spans.setdefault(started["thread"], []).append(
                    segment("thread", started["t_ns"], view_end)
                )
        elif now_ns and request["finished_ns"] is None:
            segments.append(segment("waiting", _sent(request), now_ns))
        lanes.append(Lane(f"{request['id']} {request['method']} {request['url']}", segments))
    stalls = [
        segment("stall", e["started_ns"], e["started_ns"] + e["duration_ns"])
        for e in document["events"]
        if e["kind"] == "loop.blocked"
    ]
    lanes.append(Lane("event loop", stalls, "loop"))
    for thread, spans in sorted(thread_spans.items()):
        lanes.append(Lane(f"thread {thread}", spans, "thread"))
    return lanes, span / 1e6


# -- predict, then reveal --------------------------------------------------------------

OVERLAP_CHOICES = {
    "together": "all at the same time",
    "partly": "partly overlapping",
    "one-by-one": "one after another",
}


NO_PAUSE = "none"


def pause_choices(scenario: Scenario) -> dict[str, str]:
    """Answers to "where does the view pause?": each statement line of the view, and
    nowhere. Which is right comes from the trace, after the run."""
    lines, start = inspect.getsourcelines(scenario.view)
    choices = {}
    for number, text in enumerate(lines[1:], start=start + 1):
        code = text.strip()
        if code and not code.startswith(("#", ")", "]", "}")):
            choices[str(number)] = f"line {number}: {code}"
    choices[NO_PAUSE] = "nowhere: it runs straight through without pausing at an await"
    return choices


@dataclass(frozen=True)
class Pause:
    """Where the trace saw the view pause: a line, the awaited expression, and the first
    step (of the first request) that shows it."""

    line: int
    awaiting: str
    request: str | None
    step: int


@dataclass(frozen=True)
class Reveal:
    """The trace's answers to the questions asked before the run, and why."""

    overlap: str  # a key of OVERLAP_CHOICES
    wall_ms: float
    reasons: list[str]
    pauses: list[Pause] = field(default_factory=list)
    predicted_overlap: str | None = None
    predicted_wall_ms: int | None = None
    predicted_pause: str | None = None  # a key of pause_choices

    @property
    def pause_right(self) -> bool | None:
        if self.predicted_pause is None:
            return None
        if self.predicted_pause == NO_PAUSE:
            return not self.pauses
        return self.predicted_pause in {str(pause.line) for pause in self.pauses}

    @property
    def overlap_right(self) -> bool | None:
        return None if self.predicted_overlap is None else self.predicted_overlap == self.overlap

    @property
    def wall_error_percent(self) -> float | None:
        if self.predicted_wall_ms is None or not self.wall_ms:
            return None
        return (self.predicted_wall_ms - self.wall_ms) / self.wall_ms * 100


def reveal(
    document: TraceDocument,
    predicted_overlap: str | None,
    predicted_wall_ms: int | None,
    predicted_pause: str | None = None,
) -> Reveal:
    """How the requests really ran, in words computed from the trace's events."""
    events = document["events"]
    pauses: dict[int, Pause] = {}
    for event in events:
        line = event["line"]
        if event["kind"] == "await.suspended" and line is not None and line not in pauses:
            pauses[line] = Pause(line, event["awaiting"], event["request"], event["seq"])
    views = _view_spans(events)
    most_at_once = most_overlapping(views)
    if len(views) <= 1 or most_at_once == len(views):
        overlap = "together"
    elif most_at_once == 1:
        overlap = "one-by-one"
    else:
        overlap = "partly"
    reasons = reveal_reasons(events, context_of_document(document), together=most_at_once > 1)
    return Reveal(
        overlap=overlap,
        wall_ms=lab_metrics(document).wall_ms,
        reasons=reasons,
        pauses=sorted(pauses.values(), key=lambda pause: pause.line),
        predicted_overlap=predicted_overlap if predicted_overlap in OVERLAP_CHOICES else None,
        predicted_wall_ms=predicted_wall_ms,
        predicted_pause=predicted_pause or None,
    )


def _view_spans(events: list[Event]) -> list[tuple[int, int]]:
    started = {e["request"]: e["t_ns"] for e in events if e["kind"] == "view.started"}
    return [
        (started[e["request"]], e["t_ns"])
        for e in events
        if e["kind"] == "view.returned" and e["request"] in started
    ]


def most_overlapping(spans: list[tuple[int, int]]) -> int:
    changes = sorted(
        [(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
        key=lambda change: (change[0], change[1]),
    )
    most = current = 0
    for _, change in changes:
        current += change
        most = max(most, current)
    return most


def progress_context(progress: LabProgress, max_requests: int | None = None) -> dict[str, Any]:
    """What the lab page's progress panel shows: the run's lanes up to now (the first
    ``max_requests`` requests' lanes only, if given, with the loop's and threads')."""
    now = time.monotonic_ns()
    lanes, length_ms = timeline(progress.document(), now_ns=now)
    requests = [lane for lane in lanes if lane.kind == "request"]
    hidden = 0
    if max_requests is not None and len(requests) > max_requests:
        hidden = len(requests) - max_requests
        lanes = requests[:max_requests] + [lane for lane in lanes if lane.kind != "request"]
    return {
        "progress": progress,
        "live": {"lanes": lanes, "length_ms": length_ms, "hidden": hidden},
        "phases": PHASE_LABELS,
    }
