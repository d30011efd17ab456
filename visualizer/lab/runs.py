"""The concurrency lab: many real requests at once on a chosen server, and what they did.

Every figure here is computed from the recorded trace of the run.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.urls import reverse

from tracer.django_integration import get_tracer
from tracer.events import Event, TraceDocument
from visualizer.lab.forms import NUMBER_DEFAULTS, SERVERS, LabForm
from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.runs import (
    ClientTimings,
    RunRequest,
    new_recording_id,
    record_run,
    send_requests,
    with_client_timings,
)
from visualizer.server_process import GunicornServer
from visualizer.traces.models import Trace
from visualizer.traces.narration import plural
from visualizer.traces.run_state import tracked_run
from visualizer.traces.steps import whole_number
from visualizer.traces.time_strip import lanes_of, time_strip

logger = logging.getLogger(__name__)


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
        """Read and check the lab form's values (visualizer/lab/forms.py); ValueError says
        what is wrong."""
        requests, params, server, threads, workers = LabForm(scenario, values).checked_lab()
        return cls(scenario, RunRequest(requests, params), server, threads, workers)

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
        "server": server if server in SERVERS else "asgi",
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


def progress_context(progress: LabProgress, max_requests: int | None = None) -> dict[str, Any]:
    """What the lab page's progress panel shows: the run's lanes up to now (the first
    ``max_requests`` requests' lanes only, if given, with the loop's and threads')."""
    now = time.monotonic_ns()
    lanes = lanes_of(progress.document(), now_ns=now)
    strip = time_strip(lanes, max_requests=max_requests) if lanes is not None else None
    return {
        "progress": progress,
        "live": {"strip": strip, "length_ms": lanes.length_ns / 1e6 if lanes else 0.0},
    }
