"""The playground worker's URLs: the one edited view, at its scenario's address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path

urlpatterns: list[URLPattern] = []


def serve(slug: str, view: Callable[..., Any]) -> None:
    """Route ``/run/<slug>/`` to the edited view (directly: Django sees the view itself)."""
    urlpatterns[:] = [path(f"run/{slug}/", view, name=f"run-{slug}")]
