"""The ASGI application.

In the UI process (the default): the pages over HTTP and Channels for WebSockets, with no
tracing of its own; its runtime starts the subject process, where the traced scenario
views run (visualizer/scenarios/subject.py). In the subject (``VISUALIZER_ROLE=subject``):
the scenario views, traced when TRACING_ENABLED.

Importing this module sets Django up and starts nothing: the process's services start in
``runtime.start`` (visualizer/runtime.py), which ``python -m visualizer.serve_asgi`` calls
before Daphne serves, and the first request calls if nothing has.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
# Set Django up before importing anything that touches models or settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from tracer.django_integration import TraceRequests  # noqa: E402
from visualizer.runtime import runtime  # noqa: E402
from visualizer.scenarios.subject import is_subject  # noqa: E402


def build_subject_app() -> Any:
    """The subject's handler: Django, traced when TRACING_ENABLED, streaming to its UI."""
    runtime.start("subject")
    http_app: Any = TraceRequests(django_asgi_app) if runtime.tracing else django_asgi_app
    return ProtocolTypeRouter({"http": http_app})


def build_ui_app() -> Any:
    """The UI's handler, with static files served in front, and its WebSockets."""
    from visualizer.middleware import SecurityHeaders
    from visualizer.routing import websocket_application

    runtime.start("ui")
    return ProtocolTypeRouter(
        {
            # Static files are served before Django's middleware: the headers are added
            # here for them too.
            "http": SecurityHeaders(ASGIStaticFilesHandler(django_asgi_app)),
            "websocket": websocket_application(),
        }
    )


class Application:
    """This process's handler, built (and its runtime started) once, on ``start()`` or the
    first connection."""

    def __init__(self) -> None:
        self._handler: Any = None
        self._lock = threading.Lock()

    def start(self) -> Any:
        with self._lock:
            if self._handler is None:
                self._handler = build_subject_app() if is_subject() else build_ui_app()
            return self._handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        handler = self._handler
        if handler is None:
            # Off the loop: starting the subject process takes a moment.
            handler = await asyncio.to_thread(self.start)
        await handler(scope, receive, send)


application = Application()
