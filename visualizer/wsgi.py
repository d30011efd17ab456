"""The WSGI application, for the concurrency lab's WSGI server mode (gunicorn).

Importing it sets Django up and starts nothing: each worker starts its runtime
(visualizer/runtime.py) in gunicorn's ``post_worker_init`` hook (visualizer/gunicorn_hooks.py),
or on its first request under another server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
django_wsgi_app = get_wsgi_application()

from tracer.django_integration import TraceWSGIRequests  # noqa: E402
from visualizer.runtime import runtime  # noqa: E402


class Application:
    """Django's WSGI handler, traced when TRACING_ENABLED, built once its runtime has
    started."""

    def __init__(self) -> None:
        self._handler: Any = None
        self._lock = threading.Lock()

    def start(self) -> Any:
        with self._lock:
            if self._handler is None:
                runtime.start("wsgi")
                handler: Any = django_wsgi_app
                if runtime.tracing:
                    handler = TraceWSGIRequests(django_wsgi_app)
                self._handler = handler
            return self._handler

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        handler = self._handler or self.start()
        result: Iterable[bytes] = handler(environ, start_response)
        return result


application = Application()
