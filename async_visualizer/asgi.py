"""``trace_asgi(application)``: the one wrapper a project puts around its ASGI application."""

from __future__ import annotations

from typing import Any

from django.core.handlers.base import BaseHandler
from django.urls import get_resolver

from async_visualizer.conf import get_config
from async_visualizer.decorators import DECORATED
from tracer import targets
from tracer.django_integration import TraceRequests, TraceViewMiddleware, get_tracer


def trace_asgi(application: Any) -> Any:
    """``application`` traced, when ASYNC_VISUALIZER["ENABLED"] is True; else
    ``application`` itself, untouched.

    Call it with Django's handler (``get_asgi_application()``) or with a wrapper that keeps
    it as ``.application`` or ``.app`` (ASGIStaticFilesHandler, Channels'
    ProtocolTypeRouter's "http" entry is passed as it is). It turns the instrumentation on,
    adds the view-type check after the project's own view middleware (unless MIDDLEWARE
    lists TraceViewMiddleware already), and returns the ASGI wrapper that sees each request
    arrive and its response leave.
    """
    config = get_config()
    if not config["ENABLED"]:
        return application
    handler = _django_handler(application)
    if handler is None:
        raise TypeError(
            "trace_asgi() needs Django's ASGI handler (get_asgi_application()) or a wrapper "
            f"around it; got {type(application).__name__}"
        )
    # The URLconf is imported now, so that every @trace view's module is loaded and its
    # helpers (defined anywhere in the module) can be found.
    get_resolver().url_patterns  # noqa: B018
    targets.add_helpers(DECORATED, config["DEPTH"])
    targets.register(DECORATED)
    _check_views_last(handler)
    get_tracer().instrumentation.enable()
    return TraceRequests(application)


def _django_handler(application: Any) -> BaseHandler | None:
    seen = 0
    while application is not None and seen < 8:
        if isinstance(application, BaseHandler):
            return application
        application = getattr(application, "application", None) or getattr(application, "app", None)
        seen += 1
    return None


def _check_views_last(handler: BaseHandler) -> None:
    """Run the tracer's view-type check after every other view middleware, just before
    Django decides how to call the view. (Django keeps the view middleware of MIDDLEWARE in
    this list; adding to it saves the project a MIDDLEWARE entry.)"""
    view_middleware: list[Any] = handler._view_middleware  # type: ignore[attr-defined]
    if any(isinstance(getattr(m, "__self__", None), TraceViewMiddleware) for m in view_middleware):
        return
    middleware = TraceViewMiddleware(handler._middleware_chain)  # type: ignore[attr-defined]
    view_middleware.append(middleware.process_view)
