"""Requests and answers every app shares: request types as the views see them (with
the htmx details django-htmx's middleware adds), and the answer to a bad request."""

from __future__ import annotations

from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class HtmxASGIRequest(ASGIRequest):
    htmx: HtmxDetails


# Refusals whose message is this app's own sentence, or one of Django's fixed ones naming
# the upload bound that was passed (settings.py).
TOLD_AS_THEY_SAY = (BadRequest, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (handler400): a scenario view's parameter out of range, or a body past
    Django's upload bounds, is told as it says; anything else Django refused (a disallowed
    host, say) gets a short sentence, as Django's own page would."""
    if isinstance(exception, TOLD_AS_THEY_SAY):
        reason = str(exception)
    else:
        reason = "The server could not understand the request."
    return HttpResponse(f"Bad request: {reason}", status=400, content_type="text/plain")
