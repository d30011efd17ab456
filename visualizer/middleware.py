"""Security headers for every response, as native async middleware.

Django's built-in middleware (SecurityMiddleware, SessionMiddleware, CsrfViewMiddleware…)
runs its hooks through sync_to_async under ASGI: one hop to a worker thread and back per
hook per request. The traces would show those hops around every scenario view, so the
site uses only middleware that runs natively in both modes (visualizer/csrf.py runs
CsrfViewMiddleware's checks that way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

# Scripts, styles, images and connections (the live page's WebSocket) from this site only;
# styles may be inline (the lab's timeline positions its bars with style attributes, and
# htmx adds its indicator styles). No framing, plugins or foreign form targets.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        # Django checks the Host header against ALLOWED_HOSTS only when asked for it, and
        # no other middleware here asks: a disallowed host gets its 400 now.
        request.get_host()
        return add_security_headers(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        request.get_host()
        response = await self.get_response(request)
        return add_security_headers(response)


def add_security_headers(response: HttpResponseBase) -> HttpResponseBase:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    return response


class SecurityHeaders:
    """ASGI middleware: the same headers on every HTTP response, static files included
    (Django's static files handler answers before the middleware above runs)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
