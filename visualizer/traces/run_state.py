"""Whether a stored trace's run is going on, has finished, or was cut off.

A run started here (a live run, a lab run) is stored at once as a trace with nothing in it
yet, "recording"; the archiver's saves keep it so while the run goes on, and its end marks
it "complete", or "interrupted" if it failed. A server killed mid-run marks nothing: the
next start-up (``recover``) marks every trace still recording whose recorder has ended as
interrupted, after stopping any process the dead server left running. Until then each
page counts such a trace as interrupted (Trace.current_status).
"""

from __future__ import annotations

import contextlib
import datetime
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings

from tracer import events
from tracer.django_integration import get_config
from visualizer import lifeline
from visualizer.scenarios.catalog import Scenario
from visualizer.traces.models import Trace

INTERRUPTED_TEXT = (
    "This run was interrupted: the server stopped before it finished, so its trace ends "
    "where the recording was cut off."
)

# Runs of edited code (the playground) are mirrored into the tracer's store as their worker
# streams them, for the live page, and stored by the run itself, once it is over, with the
# worker's checked trace (visualizer/playground/live.py): never by the archiver.
EDITED_PREFIX = "pg"

# Runs this process started and has not finished, by recording id.
OPEN: set[str] = set()


def held_open(recording_id: str) -> bool:
    """Whether the archiver stores this recording as still recording whatever its requests
    say: a run going on in this process, or any recording of a process that records parts
    of runs another process completes (the lab's gunicorn: TRACE_PARTIAL_RUNS)."""
    return bool(settings.TRACE_PARTIAL_RUNS) or recording_id in OPEN


def going_on(recording_id: str) -> bool:
    """Whether this process started the run and it is not over yet."""
    return recording_id in OPEN


def open_run(recording_id: str, scenario: Scenario) -> None:
    """Note a run as started, and store it (empty, recording) unless it is stored already:
    from now on a page asking for it finds it."""
    OPEN.add(recording_id)
    # Without tracing nothing of the run is stored.
    if not get_config()["ENABLED"] or Trace.objects.filter(recording_id=recording_id).exists():
        return
    placeholder = events.trace_document(
        recording_id=recording_id,
        scenario={"slug": scenario.slug, "title": scenario.title},
        server={},
        tracer={},
        recorded_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        requests=[],
        events=[],
    )
    Trace.store(placeholder, source=Trace.Source.RECORDED, status=Trace.Status.RECORDING)


def close_run(recording_id: str, status: str) -> None:
    """Note a run as ended, complete or interrupted. A run that failed before recording
    anything leaves nothing in the library: its page has said why."""
    OPEN.discard(recording_id)
    recording = Trace.objects.filter(recording_id=recording_id, status=Trace.Status.RECORDING)
    if status == Trace.Status.INTERRUPTED:
        merge_parts_into(recording_id, status)
        recording.filter(request_count=0).delete()
    recording.update(status=status)


@contextlib.asynccontextmanager
async def tracked_run(recording_id: str, scenario: Scenario) -> AsyncIterator[None]:
    """Around a run: open it, and close it complete, or interrupted if anything (a failure,
    a cancellation) ends it early."""
    await database_sync_to_async(open_run)(recording_id, scenario)
    try:
        yield
    except BaseException:
        await database_sync_to_async(close_run)(recording_id, Trace.Status.INTERRUPTED)
        raise
    await database_sync_to_async(close_run)(recording_id, Trace.Status.COMPLETE)


def interrupted(recording_id: str | None) -> bool:
    """Whether the stored trace of this recording was cut off."""
    if not recording_id:
        return False
    trace = Trace.objects.filter(recording_id=recording_id).only("status", "recorder").first()
    return trace is not None and trace.interrupted


def parts_of(recording_id: str) -> list[Trace]:
    """The parts several WSGI workers stored of one run (``<id>-w<pid>``, lab.py)."""
    part = re.compile(rf"{re.escape(recording_id)}-w\d+")
    candidates = Trace.objects.filter(recording_id__startswith=f"{recording_id}-w")
    return [trace for trace in candidates if part.fullmatch(trace.recording_id)]


def merge_parts_into(recording_id: str, status: str) -> bool:
    """A run cut off while several workers recorded it: their parts become its one trace,
    as the run would have (lab.merge_parts), instead of traces of their own."""
    # Imported here: the lab imports this module.
    from visualizer.lab.runs import merge_parts

    parts = parts_of(recording_id)
    if not parts:
        return False
    merged = merge_parts(recording_id, [part.document() for part in parts])
    Trace.store(merged, source=Trace.Source.RECORDED, status=status)
    Trace.objects.filter(pk__in=[part.pk for part in parts]).delete()
    return True


@dataclass
class Recovered:
    """What start-up found left by a server that stopped mid-run."""

    stopped: list[int] = field(default_factory=list)  # processes it had left running
    interrupted: list[str] = field(default_factory=list)  # its runs, now interrupted

    def message(self) -> str:
        said = []
        if self.stopped:
            said.append(
                f"stopped {len(self.stopped)} server process"
                f"{'es' if len(self.stopped) != 1 else ''} the last server left running"
            )
        if self.interrupted:
            count = len(self.interrupted)
            traces = f"{count} trace{'s' if count != 1 else ''}"
            said.append(f"marked {traces} of runs it cut off as interrupted")
        return f"At start-up: {' and '.join(said)}." if said else ""


def recover(wait_for_orphans: float = 10) -> Recovered:
    """At start-up, before serving: stop the processes a dead server left running, then
    mark each trace still recording whose recorder has ended as interrupted (a lab run's
    parts merged into its trace)."""
    recovered = Recovered(stopped=lifeline.stop_orphans())
    deadline = time.monotonic() + wait_for_orphans
    while time.monotonic() < deadline and any(map(lifeline.alive, recovered.stopped)):
        time.sleep(0.05)
    recording = Trace.objects.filter(status=Trace.Status.RECORDING).only(
        "recording_id", "recorder", "status"
    )
    cut_off = [trace.recording_id for trace in recording if trace.interrupted]
    part = re.compile(r".+-w\d+")
    runs = [recording_id for recording_id in cut_off if not part.fullmatch(recording_id)]
    for recording_id in runs:
        merge_parts_into(recording_id, Trace.Status.INTERRUPTED)
    Trace.objects.filter(recording_id__in=cut_off, status=Trace.Status.RECORDING).update(
        status=Trace.Status.INTERRUPTED
    )
    # Parts of no run that was stored (merged parts are gone) stay, interrupted.
    stray = Trace.objects.filter(recording_id__in=set(cut_off) - set(runs))
    recovered.interrupted = runs + list(stray.values_list("recording_id", flat=True))
    return recovered
