"""Requests sent straight to the project's ASGI application in this process: N at once on
a real event loop, recorded together. No socket is opened; nothing leaves the process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.utils.module_loading import import_string

from async_visualizer.asgi import trace_asgi
from tracer.django_integration import RECORDING_HEADER, get_tracer, recording_header_value
from tracer.events import TraceDocument


def project_application() -> Any:
    """The project's ASGI application (settings.ASGI_APPLICATION, as Channels and Daphne
    name it), or Django's handler wrapped with trace_asgi()."""
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if dotted:
        return import_string(dotted)
    return trace_asgi(get_asgi_application())


async def send_request(
    application: Any,
    method: str,
    url: str,
    host: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
) -> int:
    """One HTTP request through ``application`` (with ``body``, whose headers are in
    ``headers``); returns its status."""
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(b"host", host.encode("idna")), *headers],
        "client": ("127.0.0.1", 0),
        "server": (host, 80),
    }
    answered = asyncio.Event()
    status = 0
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        # Django listens for a disconnect while the view runs: there is none until the
        # whole response is here.
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await application(scope, receive, send)
    answered.set()
    return status


def record_requests(
    url: str,
    requests: int,
    method: str = "GET",
    host: str = "localhost",
    body: bytes = b"",
    content_type: str | None = None,
) -> tuple[list[int], TraceDocument | None]:
    """Send ``requests`` requests to ``url`` at once, each with ``body`` (of
    ``content_type``, if given); their statuses and the recording of them (None if the
    view is not traced)."""
    application = project_application()
    recording_id = uuid.uuid4().hex[:16]
    headers = [(RECORDING_HEADER, recording_header_value(recording_id).encode("latin-1"))]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode("ascii")))
    if body:
        headers.append((b"content-length", str(len(body)).encode("ascii")))

    async def run_all() -> list[int]:
        return list(
            await asyncio.gather(
                *(
                    send_request(application, method, url, host, headers, body)
                    for _ in range(requests)
                )
            )
        )

    statuses = asyncio.run(run_all())
    recording = get_tracer().store.get(recording_id)
    return statuses, recording.document() if recording is not None else None
