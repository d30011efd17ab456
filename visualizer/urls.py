from __future__ import annotations

from django.urls import path

from visualizer import views
from visualizer.scenarios import SCENARIOS

urlpatterns = [
    path("", views.home, name="home"),
    path("scenarios/<slug:slug>/", views.scenario_page, name="scenario"),
    path("scenarios/<slug:slug>/run/", views.scenario_run, name="scenario-run"),
    # Where the page's WebSocket connects (served by Channels, see routing.py).
    path("ws/scenarios/<slug:slug>/", views.no_websocket, name="scenario-socket"),
    path("recordings/<str:recording_id>.json", views.recording_json, name="recording-json"),
    # Each scenario's real view, routed directly so Django sees the view itself.
    *(path(f"run/{slug}/", s.view, name=f"run-{slug}") for slug, s in SCENARIOS.items()),
]
