"""Security headers for every response, as native async middleware.

Django's built-in middleware (SecurityMiddleware, SessionMiddleware, CsrfViewMiddleware…)
runs its hooks through sync_to_async under ASGI: one hop to a worker thread and back per
hook per request. The traces would show those hops around every scenario view, so the
site uses only middleware that runs natively in both modes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

SECURITY_HEADERS = {
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
        return add_security_headers(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        return add_security_headers(response)


def add_security_headers(response: HttpResponseBase) -> HttpResponseBase:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    return response
