"""The background services a serving process runs, started and stopped explicitly.

Importing the ASGI or WSGI module starts nothing. A server process calls ``runtime.start()``
once before it serves (``python -m visualizer.serve_asgi`` for Daphne, gunicorn's
``post_worker_init`` hook), or its first request does; ``start`` starts what the process's
role needs, once, and ``stop`` (also run at exit) tears it down in reverse order.

The roles: the UI (pages and WebSockets: the upstream service, the archiver, the subject
process), the subject (the traced scenario views: tracing, the stream to its UI, warm HTTP
clients) and a WSGI worker (the traced views under gunicorn).
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal

logger = logging.getLogger(__name__)

Role = Literal["ui", "subject", "wsgi"]
Stop = Callable[[], object]


class Runtime:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._stops: list[tuple[str, Stop]] = []
        self.role: Role | None = None
        self.tracing = False

    @property
    def running(self) -> bool:
        return self.role is not None

    def start(self, role: Role) -> None:
        """Start the services of ``role`` (idempotent: a second call does nothing)."""
        with self._lock:
            if self.role is not None:
                if role != self.role:
                    raise RuntimeError(f"already started as {self.role}, not {role}")
                return
            self.role = role
            atexit.register(self.stop)
            try:
                STARTS[role](self)
            except BaseException:
                self.stop()
                raise

    def started(self, name: str, stop: Stop) -> None:
        """Note a service started, with what stops it."""
        self._stops.append((name, stop))

    def services(self) -> list[str]:
        """The services running, in the order they started."""
        return [name for name, _ in self._stops]

    def stop(self) -> None:
        """Stop every service started, the last started first (idempotent)."""
        with self._lock:
            while self._stops:
                name, stop = self._stops.pop()
                try:
                    stop()
                except Exception:
                    logger.exception("could not stop %s", name)
            self.role = None
            self.tracing = False


def _start_tracing(runtime: Runtime) -> None:
    from tracer.django_integration import disable_tracing, enable_tracing

    runtime.tracing = enable_tracing()
    if runtime.tracing:
        runtime.started("tracing", disable_tracing)


def _start_archiver(runtime: Runtime) -> None:
    from visualizer.traces.archive import archiver

    archiver.start()
    runtime.started("archiver", archiver.stop)


def _start_ui(runtime: Runtime) -> None:
    from django.conf import settings

    from tracer.django_integration import get_config
    from visualizer.playground.sandbox import warm_workers
    from visualizer.request_limits import install_body_limit
    from visualizer.scenarios.subject import SubjectUnavailable, subject
    from visualizer.scenarios.upstream import upstream

    # This process's threads that compute (the live panels, the archiver, the mirror)
    # hand the GIL to the event loop after 1 ms, not Python's 5 ms: the loop streams
    # the live rows, and takes the GIL back after each of its socket calls.
    sys.setswitchinterval(0.001)
    # The largest body a page takes is a trace upload, with its form around it.
    install_body_limit(settings.UPLOAD_MAX_BYTES)
    # The subject's views wait for it; it lives here, apart from the loop they block.
    upstream.start()
    runtime.started("upstream", upstream.stop)
    if get_config()["ENABLED"]:
        # Stores the recordings mirrored from the subject.
        _start_archiver(runtime)
    # Started by the first edited run; here only so that they stop with the rest.
    runtime.started("playground workers", warm_workers.stop)
    runtime.started("subject", subject.stop)
    try:
        subject.start()
    except SubjectUnavailable as error:
        # The pages still work; each run tries again and says why it cannot.
        logger.error("%s", error)


def _start_subject(runtime: Runtime) -> None:
    from tracer.django_integration import get_tracer
    from visualizer.scenarios.scenario_views import warm_up_clients
    from visualizer.scenarios.subject import connect_feed

    _start_tracing(runtime)
    sink = connect_feed(get_tracer().store, runtime.tracing)
    if sink is not None:
        runtime.started("feed", sink.close)
    elif runtime.tracing:
        # Started on its own (manage.py trace): it stores what it records itself.
        _start_archiver(runtime)
    _warm_up(runtime, warm_up_clients)


def _start_wsgi(runtime: Runtime) -> None:
    from visualizer.scenarios.scenario_views import warm_up_clients

    _start_tracing(runtime)
    if runtime.tracing:
        _start_archiver(runtime)
    _warm_up(runtime, warm_up_clients)


def _warm_up(runtime: Runtime, warm_up_clients: Callable[[], Any]) -> None:
    from visualizer.scenarios.upstream import upstream

    # Start the HTTP clients now, not in the first traced request.
    warm_up_clients()
    if upstream.running:
        # Started here for the warm-up (no UI gave this process one).
        runtime.started("upstream", upstream.stop)


STARTS: dict[Role, Callable[[Runtime], None]] = {
    "ui": _start_ui,
    "subject": _start_subject,
    "wsgi": _start_wsgi,
}

runtime = Runtime()
