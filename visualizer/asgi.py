"""The ASGI application.

In the UI process (the default): the pages over HTTP and Channels for WebSockets, with no
tracing of its own; it starts the subject process, where the traced scenario views run
(visualizer/subject.py). In the subject (``VISUALIZER_ROLE=subject``): the scenario views,
traced when TRACING_ENABLED.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.core.asgi import get_asgi_application

from visualizer import lifeline

# Started by another process (a UI, serve --processes, a test): end with it.
lifeline.watch_parent(lifeline.exit_now)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
# Set Django up before importing anything that touches models or settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from tracer.django_integration import (  # noqa: E402
    TraceRequests,
    enable_tracing,
    get_config,
    get_tracer,
)
from visualizer.archive import archiver  # noqa: E402
from visualizer.subject import SubjectUnavailable, connect_feed, is_subject, subject  # noqa: E402

logger = logging.getLogger(__name__)


def build_subject_app() -> Any:
    """The subject's handler: Django, traced when TRACING_ENABLED, streaming to its UI."""
    from visualizer.scenario_views import warm_up_clients

    http_app: Any = django_asgi_app
    tracing = enable_tracing()
    sink = connect_feed(get_tracer().store, tracing)
    if tracing:
        http_app = TraceRequests(django_asgi_app)
        if sink is None:
            # Started on its own (manage.py trace): it stores what it records itself.
            archiver.start()
    # Start the HTTP clients now, not in the first traced request.
    warm_up_clients()
    return ProtocolTypeRouter({"http": http_app})


def build_ui_app() -> Any:
    """The UI's handler, with static files served in front, and its WebSockets."""
    from django.conf import settings

    from visualizer.middleware import SecurityHeaders
    from visualizer.request_limits import install_body_limit
    from visualizer.routing import websocket_application

    # The largest body a page takes is a trace upload, with its form around it.
    install_body_limit(settings.UPLOAD_MAX_BYTES)
    if get_config()["ENABLED"]:
        # Stores the recordings mirrored from the subject.
        archiver.start()
    try:
        subject.start()
    except SubjectUnavailable as error:
        # The pages still work; each run tries again and says why it cannot.
        logger.error("%s", error)
    return ProtocolTypeRouter(
        {
            # Static files are served before Django's middleware: the headers are added
            # here for them too.
            "http": SecurityHeaders(ASGIStaticFilesHandler(django_asgi_app)),
            "websocket": websocket_application(),
        }
    )


application = build_subject_app() if is_subject() else build_ui_app()
