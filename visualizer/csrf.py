"""CSRF protection for every route, as native async middleware.

Django's CsrfViewMiddleware is built on MiddlewareMixin: under ASGI each of its three hooks
runs through sync_to_async, a hop to the request's worker thread and back. The traces would
show those hops around every scenario view. This middleware runs the very same checks
(Django's own methods, not a copy of them) directly, on the event loop under ASGI and in the
request's thread under WSGI. With CSRF_USE_SESSIONS off, as here, they touch only the
request (its cookies and headers, and for a POST its body, already read by Django's handler)
and the settings: no database, nothing that needs a thread. The one cost worth naming: the
token of a POST is in its form, so the form is parsed here, on the loop, instead of in a
sync view's thread; for the largest trace upload (10 MB, which Django's parser writes to a
temporary file) that is about 10 ms (bench/csrf_check.py), on the UI's loop only.

Django calls ``process_view`` for every resolved route just before the view, so every
unsafe method (anything but GET, HEAD, OPTIONS and TRACE) is checked unless the view is
marked ``csrf_exempt``. A request no route matches gets its 404 without a check, as with
Django's middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware

from visualizer.middleware import NativeMiddleware


class CsrfMiddleware(NativeMiddleware):
    # Chosen per instance: Django wraps a sync process_view in sync_to_async when the
    # handler is async (and an async one in async_to_sync when it is not).
    process_view: Callable[..., Any]

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        if settings.CSRF_USE_SESSIONS:
            # The secret would be read from the session: a database query, which must
            # not run on the event loop.
            raise ImproperlyConfigured("visualizer.csrf.CsrfMiddleware needs CSRF_USE_SESSIONS off")
        super().__init__(get_response)
        # Django's middleware, used for its checks only: its own __call__ is never called.
        self.checks = CsrfViewMiddleware(get_response)
        if self.async_mode:
            self.process_view = self._process_view_async
        else:
            self.process_view = self._process_view_sync

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        self.checks.process_request(request)
        return self.checks.process_response(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        self.checks.process_request(request)
        response = await self.get_response(request)
        return self.checks.process_response(request, response)

    async def _process_view_async(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        return self.checks.process_view(request, view, args, kwargs)

    def _process_view_sync(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        return self.checks.process_view(request, view, args, kwargs)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """The refusal (CSRF_FAILURE_VIEW). Django's own page reads its template file on every
    refusal, on the event loop here; this one is plain text, built in memory."""
    return HttpResponseForbidden(
        f"Forbidden: {reason} Reload the page and send the form again.",
        content_type="text/plain; charset=utf-8",
    )
