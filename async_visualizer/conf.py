"""The app's settings: ``settings.ASYNC_VISUALIZER`` merged over DEFAULTS and checked."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tracer.targets import MAX_DEPTH, PATTERN

DEFAULTS: dict[str, Any] = {
    # Required: tracing is on only when the project says so.
    "ENABLED": None,
    # Patterns of the views to trace: "shop.views.*", "shop.views.OrderView".
    "VIEWS": [],
    # How many calls down from a view its helpers are traced (tracer/targets.py).
    "DEPTH": 1,
    "LOOP_BLOCK_THRESHOLD_MS": 20,
    "BLOCKING_CALL_THRESHOLD_MS": 10,
    "MAX_RECORDINGS": 64,
    # The recordings page (async_visualizer.urls) answers staff users only; False lets any
    # signed-in user see it.
    "STAFF_ONLY": True,
}


@functools.cache
def get_config() -> dict[str, Any]:
    """The checked settings; raises ImproperlyConfigured naming what is wrong."""
    given = getattr(settings, "ASYNC_VISUALIZER", None)
    if not isinstance(given, dict):
        raise ImproperlyConfigured(
            'ASYNC_VISUALIZER must be a dict, e.g. {"ENABLED": True, "VIEWS": ["shop.views.*"]}'
        )
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ImproperlyConfigured(
            f"unknown ASYNC_VISUALIZER settings: {', '.join(unknown)} "
            f"(known: {', '.join(DEFAULTS)})"
        )
    config = {**DEFAULTS, **given}
    if not isinstance(config["ENABLED"], bool):
        raise ImproperlyConfigured(
            'ASYNC_VISUALIZER["ENABLED"] must be set to True or False: tracing is never on '
            "by default"
        )
    views = config["VIEWS"]
    if not isinstance(views, list | tuple):
        raise ImproperlyConfigured('ASYNC_VISUALIZER["VIEWS"] must be a list of view patterns')
    for pattern in views:
        if not isinstance(pattern, str) or not PATTERN.fullmatch(pattern):
            raise ImproperlyConfigured(
                f'ASYNC_VISUALIZER["VIEWS"]: {pattern!r} is not a view pattern; write a '
                "dotted path such as 'shop.views.OrderView' or 'shop.views.*'"
            )
    depth = config["DEPTH"]
    if type(depth) is not int or not 0 <= depth <= MAX_DEPTH:
        raise ImproperlyConfigured(
            f'ASYNC_VISUALIZER["DEPTH"] must be a whole number from 0 to {MAX_DEPTH}'
        )
    for key in ("LOOP_BLOCK_THRESHOLD_MS", "BLOCKING_CALL_THRESHOLD_MS", "MAX_RECORDINGS"):
        value = config[key]
        if type(value) is not int or value < 1:
            raise ImproperlyConfigured(f'ASYNC_VISUALIZER["{key}"] must be a whole number >= 1')
    if not isinstance(config["STAFF_ONLY"], bool):
        raise ImproperlyConfigured('ASYNC_VISUALIZER["STAFF_ONLY"] must be True or False')
    return config


def tracer_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``tracer`` settings (tracer/django_integration.py) these settings mean."""
    return {
        "ENABLED": config["ENABLED"],
        "LOOP_BLOCK_THRESHOLD_MS": config["LOOP_BLOCK_THRESHOLD_MS"],
        "BLOCKING_CALL_THRESHOLD_MS": config["BLOCKING_CALL_THRESHOLD_MS"],
        "MAX_RECORDINGS": config["MAX_RECORDINGS"],
    }
