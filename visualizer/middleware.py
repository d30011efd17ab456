"""Security headers for every response, as native async middleware.

Django's built-in middleware (SecurityMiddleware, SessionMiddleware, CsrfViewMiddleware…)
runs its hooks through sync_to_async under ASGI: one hop to a worker thread and back per
hook per request. The traces would show those hops around every scenario view, so the
site uses only middleware that runs natively in both modes (visualizer/csrf.py runs
CsrfViewMiddleware's checks that way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


# Scripts, styles, images and connections (the live page's WebSocket) from this site only;
# styles may be inline (the lab's timeline positions its bars with style attributes, and
# htmx adds its indicator styles). No framing, plugins or foreign form targets.
def content_security_policy(frame_ancestors: str = "'none'") -> str:
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()
# The pages a course site may show in a frame, with ?embed=1: the players, which then have
# no forms that change anything (visualizer/traces/pages.py, PageOptions.embed).
EMBEDDABLE = ("scenario", "trace-player")

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Windows this site opens (Open in Perfetto) stay reachable by postMessage; nothing
    # else can open or reach this site's windows.
    "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
}


class NativeMiddleware:
    """Middleware that runs natively in both modes: async when the chain after it is (as
    under ASGI), so Django calls it with no thread hop; its subclasses give ``__call__``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        raise NotImplementedError


class SecurityHeadersMiddleware(NativeMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        # Django checks the Host header against ALLOWED_HOSTS only when asked for it, and
        # no other middleware here asks: a disallowed host gets its 400 now.
        request.get_host()
        return add_security_headers(self.get_response(request), request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        request.get_host()
        response = await self.get_response(request)
        return add_security_headers(response, request)


def add_security_headers(
    response: HttpResponseBase, request: HttpRequest | None = None
) -> HttpResponseBase:
    if request is not None and _embedded(request) and settings.EMBED_ALLOWED_ORIGINS:
        # Framed by the sites allowed, and only by them (CSP supersedes X-Frame-Options).
        origins = " ".join(settings.EMBED_ALLOWED_ORIGINS)
        response.headers["Content-Security-Policy"] = content_security_policy(origins)
    for header, value in SECURITY_HEADERS.items():
        if header == "X-Frame-Options" and _frames_allowed(response.headers):
            continue
        response.headers.setdefault(header, value)
    return response


def _embedded(request: HttpRequest) -> bool:
    if request.GET.get("embed") != "1":
        return False
    match = getattr(request, "resolver_match", None)
    return match is not None and match.url_name in EMBEDDABLE


def _frames_allowed(headers: Mapping[str, str]) -> bool:
    return "frame-ancestors 'none'" not in headers.get("Content-Security-Policy", "")


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
                headers = {
                    name.decode().lower(): value.decode(errors="replace")
                    for name, value in message.get("headers", [])
                }
                framed = _frames_allowed(
                    {
                        "Content-Security-Policy": headers.get(
                            "content-security-policy", "frame-ancestors 'none'"
                        )
                    }
                )
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.lower() not in headers and not (framed and name == "X-Frame-Options")
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
