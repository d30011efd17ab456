"""The playground's worker: serve one edited scenario view with Daphne, traced, send it the
run's requests, and report the trace. Never imported by the web server.

``visualizer/playground/sandbox.py`` starts it as ``python -m visualizer.playground.worker``
inside bubblewrap (or, in local mode, as a plain child process) and writes two JSON
lines to its stdin: the set-up (the server's settings), at once, and the job (the code and
the run), when a visitor runs code, which for a worker started ahead is later (a warm
worker: it sets Django up while it waits). Before it reads a line of the visitor's code it
sets its resource limits and installs its seccomp filter (visualizer/playground/seccomp.py),
so everything after, Daphne's start included, runs under them. It has no
database of the app, no secret key of the app and no network beyond its own loopback: its
Django settings are made here (a scratch SQLite database with the ORM scenarios' table, a
key of its own), its upstream service runs in a thread of this process, and the requests
are sent from here too. Nothing outside reaches into it: its only ways out are its stdout
(the report: JSON lines, read by the server as untrusted, like an imported trace) and its
stderr (logged). It ends when its stdin closes (the server went away), when it is done,
or when a limit kills it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import queue
import resource
import secrets
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
from typing import IO, Any

# The job's size limit: the code (at most 64 KB, checked by the server) and a few settings.
MAX_JOB_BYTES = 512 * 1024
# What the module is called, and the file its code is compiled from (its events name it).
MODULE_NAME = "edited_view"
FILE_NAME = f"{MODULE_NAME}.py"
PORT = 8000  # in a network namespace of its own: nothing else listens there

Report = dict[str, Any]


class Reporter:
    """The worker's report, a JSON object a line, on a descriptor of its own: fd 1 is sent
    to stderr, so nothing the view prints can be taken for the report."""

    def __init__(self) -> None:
        self._out: IO[bytes] = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        self._lock = threading.Lock()

    def send(self, report: Report) -> None:
        line = json.dumps(report, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self._out.write(line)
            self._out.flush()

    def problem(self, stage: str, message: str, line: int | None = None) -> None:
        self.send({"kind": "problem", "stage": stage, "message": message[:2000], "line": line})


class EventStream:
    """Sends the run's events as they are recorded (after the recording's header), so
    that a run a limit stops still shows what it did until then. A recorder listener
    (tracer/recorder.py): it only queues; a thread of its own writes."""

    def __init__(self, reporter: Reporter, recording_id: str) -> None:
        self.reporter, self.recording_id = reporter, recording_id
        self._queue: queue.SimpleQueue[Report] = queue.SimpleQueue()
        self._started = False
        threading.Thread(target=self._write, name="event-stream", daemon=True).start()

    def __call__(self, recording: Any, event: Any) -> None:
        if recording.id != self.recording_id:
            return
        if not self._started:
            self._started = True
            header = {
                "scenario": recording.scenario,
                "server": recording.server,
                "tracer": recording.tracer,
                "recorded_at": recording.recorded_at,
            }
            self._queue.put({"kind": "header", "recording": header})
        self._queue.put({"kind": "event", "event": event})

    def _write(self) -> None:
        while True:
            self.reporter.send(self._queue.get())


def apply_limits(limits: dict[str, int], already_used: int = 0) -> None:
    """The resource limits, soft and hard alike (the seccomp filter then forbids changing
    them): CPU seconds from now (SIGXCPU at the soft limit, SIGKILL a second later; the
    kernel counts the process's CPU time since it started, ``already_used`` of it before
    the run), address space, file size, open files, and (counted per user; root is
    exempt, which is why the seccomp filter refuses new processes outright) processes and
    threads."""
    cpu = already_used + limits["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    for name, key in (
        (resource.RLIMIT_AS, "memory_bytes"),
        (resource.RLIMIT_FSIZE, "file_bytes"),
        (resource.RLIMIT_NOFILE, "open_files"),
        (resource.RLIMIT_NPROC, "processes"),
        (resource.RLIMIT_CORE, "core_bytes"),
    ):
        resource.setrlimit(name, (limits[key], limits[key]))


def watch_stdin() -> None:
    """The server holds the other end of stdin: when it ends, however it ends, the read
    returns and the worker exits (the lifeline of visualizer/lifeline.py, on stdin)."""

    def wait() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os._exit(70)

    threading.Thread(target=wait, name="stdin-lifeline", daemon=True).start()


def configure_django(setup: dict[str, Any], scratch: Path) -> None:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        # Its own, for its own recording header: the server's key never comes in here.
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=["django.contrib.contenttypes", "visualizer.scenarios"],
        # As in the subject process: only middleware that runs natively in async mode, so
        # the trace shows the same hops.
        MIDDLEWARE=[
            "visualizer.middleware.SecurityHeadersMiddleware",
            "django_htmx.middleware.HtmxMiddleware",
            "visualizer.csrf.CsrfMiddleware",
            "tracer.django_integration.TraceViewMiddleware",
        ],
        CSRF_FAILURE_VIEW="visualizer.csrf.csrf_failure",
        ROOT_URLCONF="visualizer.playground.sandbox_urls",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(scratch / "scratch.sqlite3"),
                "OPTIONS": {"timeout": 20},
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        TIME_ZONE="UTC",
        DATA_DIR=Path(setup["data_dir"]),
        UPSTREAM_URL="",
        SCENARIO_IO_DELAY_MS=setup["io_delay_ms"],
        TRACER={**setup["tracer"], "ENABLED": True},
        TRUST_PROXY_HEADERS=False,
        LOGGING_CONFIG=None,
    )
    import django

    django.setup()


def seed_database() -> None:
    """The ORM scenarios' table, in the scratch database, with a few readings."""
    from django.db import connection

    from visualizer.scenarios.models import Reading

    with connection.schema_editor() as editor:
        editor.create_model(Reading)
    Reading.objects.bulk_create([Reading(value=value) for value in (20.5, 21.0, 19.8)])
    connection.close()


def load_module(source: str, path: Path) -> ModuleType:
    """The visitor's module, compiled from its file (so the tracer and tracebacks can
    read its lines) and run: the first of the visitor's code to run."""
    path.write_text(source, encoding="utf-8")
    module = ModuleType(MODULE_NAME)
    module.__file__ = str(path)
    sys.modules[MODULE_NAME] = module
    code = compile(source, str(path), "exec", dont_inherit=True)
    exec(code, module.__dict__)
    return module


def line_in(path: Path, trace: TracebackType | None) -> int | None:
    """The last line of the visitor's module in a traceback."""
    line = None
    for frame, number in traceback.walk_tb(trace):
        if frame.f_code.co_filename == str(path):
            line = number
    return line


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class ViewErrors(logging.Handler):
    """Notes each exception Django logs for a request (django.request, django.security):
    the view's own errors, each with its line in the visitor's module."""

    def __init__(self, reporter: Reporter, path: Path) -> None:
        super().__init__(logging.ERROR)
        self.reporter, self.path = reporter, path

    def emit(self, record: logging.LogRecord) -> None:
        if not record.exc_info or record.exc_info[1] is None:
            return
        error = record.exc_info[1]
        self.reporter.problem("view", describe(error), line_in(self.path, record.exc_info[2]))


def serve_and_run(job: dict[str, Any], reporter: Reporter, view: Any) -> None:
    """Serve the view with Daphne in this thread; once it listens, send the run's requests
    from another thread, report the trace and exit."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server
    from django.core.asgi import get_asgi_application

    from tracer.django_integration import TraceRequests, enable_tracing, get_tracer
    from visualizer.playground import sandbox_urls
    from visualizer.scenarios.catalog import get_scenario

    scenario = get_scenario(job["slug"])
    assert scenario is not None
    sandbox_urls.serve(job["slug"], view)
    application = TraceRequests(get_asgi_application())
    if not enable_tracing():
        reporter.problem("start", "tracing could not be enabled")
        os._exit(2)
    get_tracer().store.add_listener(EventStream(reporter, job["recording_id"]))

    def run() -> None:
        try:
            document = asyncio.run(send_the_requests(job, scenario))
        except Exception as error:
            reporter.problem("run", f"the requests could not be sent: {describe(error)}")
            os._exit(2)
        reporter.send({"kind": "document", "document": document})
        os._exit(0)

    def ready() -> None:
        threading.Thread(target=run, name="playground-client", daemon=True).start()

    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(host="127.0.0.1", port=PORT),
        signal_handlers=False,
        verbosity=0,
        ready_callable=ready,
    )
    server.run()


async def send_the_requests(job: dict[str, Any], scenario: Any) -> Any:
    from tracer.django_integration import get_tracer
    from visualizer.scenarios.runs import RunFailed, send_requests, with_client_timings

    try:
        timings = await send_requests(
            f"http://127.0.0.1:{PORT}",
            scenario,
            job["recording_id"],
            requests=job["requests"],
            params=job["params"],
            timeout=job["timeout_seconds"],
        )
    except RunFailed as error:
        # A view that answers 4xx: the trace still shows what it did.
        timings = {}
        logging.getLogger(__name__).info("%s", error)
    recording = get_tracer().store.get(job["recording_id"])
    if recording is None:
        raise RuntimeError("no request reached the view")
    # Off the loop, so it waits for the responses still being closed.
    document = await asyncio.to_thread(recording.document)
    return with_client_timings(document, timings)


def read_line(reporter: Reporter, what: str) -> dict[str, Any]:
    """One JSON line of stdin; the worker exits if the server closed it first."""
    raw = sys.stdin.buffer.readline(MAX_JOB_BYTES + 1)
    if not raw:
        os._exit(70)  # the server went away before it sent one
    if len(raw) > MAX_JOB_BYTES:
        reporter.problem("start", f"the {what} is too large")
        os._exit(2)
    line: dict[str, Any] = json.loads(raw)
    return line


def set_up(setup: dict[str, Any], reporter: Reporter, scratch: Path) -> None:
    """What every run needs, none of it the visitor's: Django, its scratch database, the
    upstream service and the warm HTTP clients. A worker started ahead (a warm one,
    visualizer/playground/sandbox.py) does this while it waits for its job."""
    try:
        configure_django(setup, scratch)
        seed_database()
        from visualizer.scenarios.scenario_views import warm_up_clients

        # The HTTP clients' one-time costs, paid before the traced requests (as the
        # subject's warm-up does).
        warm_up_clients()
        preload()
    except Exception as error:
        reporter.problem("start", f"the worker could not set up: {describe(error)}")
        os._exit(2)


# What serving the view and sending its requests import (serve_and_run, send_the_requests).
PRELOADED = (
    "daphne.endpoints",
    "daphne.server",
    "django.core.asgi",
    "tracer.django_integration",
    "visualizer.playground.sandbox_urls",
    "visualizer.scenarios.catalog",
    "visualizer.scenarios.runs",
)


def preload() -> None:
    """Import what serving the view and sending its requests need, and build the ASGI
    application once, before the job comes: where no bytecode is cached, compiling these
    modules alone costs a second of CPU, which a warm worker pays while it waits."""
    for name in PRELOADED:
        importlib.import_module(name)
    from django.core.asgi import get_asgi_application

    get_asgi_application()


def confine(job: dict[str, Any], reporter: Reporter) -> None:
    """The job's limits and the seccomp filter, before any of its code is read. The CPU
    limit counts from here: the set-up's CPU time is the worker's, not the run's."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    apply_limits(job["limits"], already_used=int(used.ru_utime + used.ru_stime))
    if job["seccomp"]:
        from visualizer.playground import seccomp

        try:
            seccomp.install()
        except seccomp.SeccompUnavailable as error:
            reporter.problem("start", f"the seccomp filter could not be installed: {error}")
            os._exit(2)


def main() -> None:
    """Two lines come on stdin: the set-up (the server's settings, the same for every
    run), then, when a visitor runs code, the job. Nothing of the visitor's is in the
    process until the second."""
    reporter = Reporter()
    scratch = Path(os.environ.get("TMPDIR") or "/tmp")
    path = scratch / FILE_NAME
    set_up(read_line(reporter, "set-up"), reporter, scratch)
    # The server starts the run's wall clock here, not counting the set-up.
    reporter.send({"kind": "ready"})
    job = read_line(reporter, "job")
    watch_stdin()
    confine(job, reporter)
    errors = ViewErrors(reporter, path)
    for name in ("django.request", "django.security"):
        logging.getLogger(name).addHandler(errors)
    try:
        module = load_module(job["source"], path)
    except BaseException as error:  # the visitor's code: anything at all
        reporter.problem("load", describe(error), line_in(path, error.__traceback__))
        os._exit(3)
    view = getattr(module, job["view"], None)
    if not callable(view) or not hasattr(view, "__code__"):
        reporter.problem("load", f"the module does not define the view function {job['view']}")
        os._exit(3)
    from tracer.instrumentation import register_view

    register_view(view, slug=job["slug"], title=job["title"])
    serve_and_run(job, reporter, view)


if __name__ == "__main__":
    main()
