"""The ASGI application: Django for HTTP (traced), Channels for WebSockets."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
# Set Django up before importing anything that touches models or settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from tracer.django_integration import TraceRequests, enable_tracing  # noqa: E402
from visualizer.archive import archiver  # noqa: E402
from visualizer.routing import websocket_application  # noqa: E402
from visualizer.scenario_views import warm_up_clients  # noqa: E402


def build_http_app() -> Any:
    """Django's handler, traced when TRACING_ENABLED, with static files served in front."""
    http_app: Any = django_asgi_app
    if enable_tracing():
        http_app = TraceRequests(django_asgi_app)
        archiver.start()
    # Start the upstream service and the HTTP clients now, not in the first traced request.
    warm_up_clients()
    return ASGIStaticFilesHandler(http_app)


application = ProtocolTypeRouter(
    {
        "http": build_http_app(),
        "websocket": websocket_application(),
    }
)
