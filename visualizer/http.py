"""Requests and answers every app shares: request types as the views see them (with
the htmx details django-htmx's middleware adds), and the answer to a bad request."""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class HtmxASGIRequest(ASGIRequest):
    htmx: HtmxDetails


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (handler400): a BadRequest of this app's own (a scenario view's
    parameter out of range, say) is told as it says; anything else Django refused (a
    disallowed host, a malformed body) gets a short sentence, as Django's page would."""
    if isinstance(exception, BadRequest):
        reason = str(exception)
    else:
        reason = "The server could not understand the request."
    return HttpResponse(f"Bad request: {reason}", status=400, content_type="text/plain")
