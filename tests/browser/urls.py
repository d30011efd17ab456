from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

from tracer.instrumentation import register_view
from visualizer.scenarios.views import run_in_subject


async def echo_label(request: HttpRequest) -> JsonResponse:
    """A traced view whose local variable holds whatever the client sent."""
    label = request.GET.get("label", "")
    return JsonResponse({"length": len(label)})


# Recorded as an async-io run, so the async-io page shows its recordings.
register_view(echo_label, slug="async-io", title="Echo (browser tests)")

if settings.ROLE == "subject":
    from visualizer.scenarios.subject_urls import urlpatterns as app_urlpatterns

    urlpatterns = [*app_urlpatterns, path("echo/", echo_label)]
else:
    # The UI passes it on to the subject process, as it does the scenarios' addresses.
    from visualizer.urls import urlpatterns as app_urlpatterns

    urlpatterns = [*app_urlpatterns, path("echo/", run_in_subject)]
