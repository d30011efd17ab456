"""The WSGI application, for the concurrency lab's WSGI server mode (gunicorn)."""

from __future__ import annotations

import os
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
django_wsgi_app = get_wsgi_application()

from tracer.django_integration import TraceWSGIRequests, enable_tracing  # noqa: E402
from visualizer.scenarios.scenario_views import warm_up_clients  # noqa: E402
from visualizer.traces.archive import archiver  # noqa: E402


def build_application() -> Any:
    """Django's WSGI handler, traced when TRACING_ENABLED."""
    application: Any = django_wsgi_app
    if enable_tracing():
        application = TraceWSGIRequests(django_wsgi_app)
        archiver.start()
    warm_up_clients()
    return application


application = build_application()
