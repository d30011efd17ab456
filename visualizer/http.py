"""Request types as the views see them (htmx details added by django-htmx's middleware)."""

from __future__ import annotations

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class HtmxASGIRequest(ASGIRequest):
    htmx: HtmxDetails
