"""The subject process's URLs: the scenarios' real views and their recordings only."""

from __future__ import annotations

from django.urls import path

from visualizer.scenarios.catalog import SCENARIOS
from visualizer.traces import views

# A parameter a view refuses is explained, not a bare "Bad Request (400)" page.
handler400 = "visualizer.http.bad_request"

urlpatterns = [
    path("recordings/<str:recording_id>.json", views.recording_json, name="recording-json"),
    # Each scenario's real view, routed directly so Django sees the view itself.
    *(path(f"run/{slug}/", s.view, name=f"run-{slug}") for slug, s in SCENARIOS.items()),
]
