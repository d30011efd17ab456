"""Run an edited view: check it, run it in a worker (visualizer/playground/sandbox.py),
and turn what the worker reported into a trace document with the code that ran, or into
a message that says why there is none."""

from __future__ import annotations

import asyncio
import builtins
import copy
import functools
import signal
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from tracer.events import CodeError, EditedCode, TraceDocument, trace_document
from tracer.validation import TraceRejected, validate_trace
from visualizer.limits import ConcurrencyLimit
from visualizer.playground.checks import Problem, check_source
from visualizer.playground.sandbox import (
    SETUP_SECONDS,
    Limits,
    Mode,
    OnReport,
    WorkerResult,
    current_mode,
    run_worker,
)
from visualizer.playground.worker import FILE_NAME, MODULE_NAME
from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.runs import RunRequest, new_recording_id
from visualizer.traces.run_state import EDITED_PREFIX

# At most this many concurrent requests in one edited run: each holds a thread of the
# worker, within its memory limit.
MAX_EDITED_REQUESTS = 10


class PlaygroundOff(Exception):
    """The playground does not run code on this server; the text says why."""


@dataclass
class EditedRun:
    """What came of an edited run: its trace (None when it made none), the problems at
    lines of the code, and what stopped it, if anything did."""

    document: TraceDocument | None
    problems: list[Problem] = field(default_factory=list)
    stopped: str = ""
    # The document is what the worker streamed before it was stopped: cut off.
    partial: bool = False
    # A warm worker ran it (started ahead and set up before the code came).
    warm: bool = False


@functools.cache
def edited_runs() -> ConcurrencyLimit:
    """Edited runs going on in this server process, per visitor and in all."""
    return ConcurrencyLimit(
        "edited runs", settings.PLAYGROUND_RUNS_PER_CLIENT, settings.PLAYGROUND_RUNS
    )


def job_for(scenario: Scenario, source: str, run: RunRequest, recording_id: str) -> dict[str, Any]:
    """What the worker is told when the visitor runs code: the code, the view's name, the
    run (the rest it was told at its start: visualizer/playground/sandbox.py)."""
    return {
        "source": source,
        "slug": scenario.slug,
        "title": f"{scenario.title} (edited)",
        "view": scenario.view.__name__,
        "requests": run.requests,
        "params": run.params,
        "recording_id": recording_id,
        "timeout_seconds": settings.PLAYGROUND_WALL_SECONDS,
    }


async def run_edited(
    scenario: Scenario,
    source: str,
    run: RunRequest,
    on_report: OnReport | None = None,
    recording_id: str | None = None,
) -> EditedRun:
    """Check the code; if it may run, run it in a worker and read what came of it.
    PlaygroundOff if this server runs no code. ``on_report`` is given each of the worker's
    reports as it comes (in the worker's thread; untrusted, unchecked)."""
    problems = check_source(source, scenario.view.__name__)
    if problems:
        return EditedRun(None, problems)
    state = current_mode()
    if state.mode == "off":
        raise PlaygroundOff(state.reason)
    limits = Limits.from_settings()
    recording_id = recording_id or new_recording_id(EDITED_PREFIX)
    job = job_for(scenario, source, run, recording_id)
    result = await asyncio.to_thread(run_worker, job, state.mode, limits, on_report)
    return outcome(result, job, source, state.mode, limits)


def outcome(
    result: WorkerResult, job: dict[str, Any], source: str, mode: Mode, limits: Limits
) -> EditedRun:
    """What a worker's report and ending mean. The report is read as untrusted, like an
    imported trace: the code that ran could have written anything there."""
    problems: list[Problem] = []
    document: TraceDocument | None = None
    stage_messages = []
    header: object = None
    streamed: list[object] = []
    for report in result.reports:
        kind = report.get("kind")
        if kind == "header" and header is None:
            header = report.get("recording")
        elif kind == "event":
            streamed.append(report.get("event"))
        elif kind == "problem":
            problem = _problem_of(report, mode, limits)
            if problem not in problems:
                problems.append(problem)
            if report.get("stage") != "view":
                stage_messages.append(STAGES.get(str(report.get("stage")), STAGES["start"]))
        elif kind == "document" and document is None:
            document = _checked_document(report.get("document"), job)
            if document is None:
                stage_messages.append("Its report was not a valid trace, so it is not shown.")
    stopped = " ".join([*dict.fromkeys(stage_messages), *_ending(result, limits)])
    partial = False
    if document is None and streamed:
        # Stopped before it reported its trace: what it recorded until then.
        document = _checked_document(partial_document(header, streamed, job), job)
        partial = document is not None
    if document is not None:
        document["code"] = edited_code(job, source, problems, stopped)
    return EditedRun(document, problems, stopped, partial, warm=result.warm)


def partial_document(header: object, events: list[object], job: dict[str, Any]) -> object:
    """A trace document of the events a worker streamed, with its requests as those
    events tell them. Unchecked: the caller checks it like an import (None if the parts
    are not even shaped like a recording)."""
    if not isinstance(header, dict) or not all(isinstance(e, dict) for e in events):
        return None
    requests: dict[object, dict[str, Any]] = {}
    try:
        for event in events:
            assert isinstance(event, dict)
            note_request(requests, event, job)
        return streamed_document(header, list(requests.values()), events, job)
    except (KeyError, TypeError):
        return None


def streamed_document(
    header: dict[str, Any], requests: list[Any], events: list[Any], job: dict[str, Any]
) -> TraceDocument:
    """A trace document of the run's header, as the worker reported it, with these
    requests and events. Unchecked; KeyError if the header lacks a part."""
    return trace_document(
        recording_id=job["recording_id"],
        scenario=header["scenario"],
        server=header["server"],
        tracer=header["tracer"],
        recorded_at=header["recorded_at"],
        requests=requests,
        events=events,
    )


def note_request(
    requests: dict[object, dict[str, Any]], event: dict[str, Any], job: dict[str, Any]
) -> None:
    """Note in ``requests`` (summaries by request id) what an event tells of its request:
    its start, its status, its end. KeyError or TypeError if the event is not shaped like
    one of a recording."""
    request, kind = event.get("request"), event.get("kind")
    if kind == "request.received":
        query = event["query"]
        requests[request] = {
            "id": request,
            "method": event["method"],
            "url": event["path"] + (f"?{query}" if query else ""),
            "view": f"{MODULE_NAME}.{job['view']}",
            "status": None,
            "bytes": 0,
            "received_ns": event["t_ns"],
            "finished_ns": None,
            "duration_ns": None,
        }
    elif kind == "response.started" and request in requests:
        requests[request]["status"] = event["status"]
    elif kind == "response.finished" and request in requests:
        requests[request].update(
            bytes=event["bytes"], finished_ns=event["t_ns"], duration_ns=event["duration_ns"]
        )


STAGES = {
    "load": "The module stopped before its view could be served.",
    "start": "The worker could not start the view.",
    "run": "The run's requests could not be sent to the view.",
}


def edited_code(
    job: dict[str, Any], source: str, problems: list[Problem], stopped: str
) -> EditedCode:
    errors: list[CodeError] = [
        {"line": problem.line, "message": problem.message} for problem in problems[:100]
    ]
    code: EditedCode = {"file": FILE_NAME, "view": job["view"], "text": source, "errors": errors}
    if stopped:
        code["stopped"] = stopped
    return code


def _problem_of(report: dict[str, Any], mode: Mode, limits: Limits) -> Problem:
    line = report.get("line")
    message = str(report.get("message") or "an error")[:2000]
    hint = _hint(message, mode, limits)
    return Problem(
        line if type(line) is int and line > 0 else None,
        f"{message} ({hint})" if hint else message,
    )


def _hint(message: str, mode: Mode, limits: Limits) -> str:
    """What an error means in the worker, when its type says it (a built-in exception's
    name starts the message: ``OSError: [Errno 30] Read-only file system: …``)."""
    name = message.split(":", 1)[0]
    kind = getattr(builtins, name, None)
    if kind is MemoryError:
        return f"more memory than the {limits.memory_mb} MB of address space allowed"
    if kind is RecursionError:
        return "deeper recursion than Python allows"
    if not (isinstance(kind, type) and issubclass(kind, OSError)):
        return ""
    if "Operation not permitted" in message:
        return (
            "the playground does not let a view start processes, signal other processes "
            "or change its limits"
        )
    if mode == "sandboxed" and "Network is unreachable" in message:
        return "the sandbox has no network but its own loopback, where its upstream service is"
    if mode == "sandboxed" and "Read-only file system" in message:
        return "in the sandbox the only place a view can write is its scratch folder, /tmp"
    if "File too large" in message:
        return f"no file may grow past {limits.file_mb} MB"
    if "No space left on device" in message:
        return f"the scratch folder holds {limits.scratch_mb} MB in all"
    return ""


def _ending(result: WorkerResult, limits: Limits) -> list[str]:
    code = result.returncode
    if result.timed_out and not result.set_up:
        return [
            f"The worker did not start within {SETUP_SECONDS} s (the server is busy); "
            "nothing of the code ran."
        ]
    if result.timed_out:
        return [
            f"It ran for more than {limits.wall_seconds} s of wall-clock time, the limit, "
            "and was stopped."
        ]
    if result.output_too_large:
        return ["Its report was larger than the server reads, and it was stopped."]
    if code in (0, None):
        return []
    # A worker's own exit status, or bubblewrap's: 128 + the signal that ended it.
    signal_number = -code if code < 0 else code - 128 if code > 128 else 0
    if signal_number == signal.SIGXCPU:
        return [
            f"It used more than {limits.cpu_seconds} s of CPU time, the limit, and was stopped."
        ]
    if signal_number == signal.SIGKILL:
        return ["It was killed (past the hard CPU limit, or the machine ran out of memory)."]
    if signal_number == signal.SIGSEGV:
        return [
            "It crashed (a segmentation fault): usually the C stack running out, as very deep "
            "recursion does once sys.setrecursionlimit is raised."
        ]
    if signal_number == signal.SIGXFSZ:
        return [f"It wrote a file larger than {limits.file_mb} MB, the limit, and was stopped."]
    if signal_number:
        return [f"It was ended by signal {signal.Signals(signal_number).name}."]
    if code in (2, 3):
        return []  # the worker said why
    return [f"The worker ended with exit status {code}."]


def _checked_document(raw: object, job: dict[str, Any]) -> TraceDocument | None:
    """The worker's trace, if it is a valid trace of this run."""
    try:
        document = validate_trace(copy.deepcopy(raw))
    except TraceRejected:
        return None
    scenario = document.get("scenario")
    if document["id"] != job["recording_id"] or not scenario or scenario["slug"] != job["slug"]:
        return None
    if "code" in document:
        return None
    return document
