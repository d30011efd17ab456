"""Pages and endpoints of the visualizer (the scenario views are in scenario_views.py)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tracer.django_integration import get_tracer
from visualizer.scenarios import SCENARIOS


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"scenarios": SCENARIOS.values()})


@require_GET
def recording_json(request: HttpRequest, recording_id: str) -> JsonResponse:
    """The trace document of a recording this server process holds in memory."""
    recording = get_tracer().store.get(recording_id)
    if recording is None:
        raise Http404("No recording with that id in this server process.")
    return JsonResponse(recording.document())
