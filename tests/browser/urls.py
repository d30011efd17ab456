from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from tracer.instrumentation import register_view
from visualizer.urls import urlpatterns as app_urlpatterns


async def echo_label(request: HttpRequest) -> JsonResponse:
    """A traced view whose local variable holds whatever the client sent."""
    label = request.GET.get("label", "")
    return JsonResponse({"length": len(label)})


# Recorded as an async-io run, so the async-io page shows its recordings.
register_view(echo_label, slug="async-io", title="Echo (browser tests)")

urlpatterns = [*app_urlpatterns, path("echo/", echo_label)]
