from __future__ import annotations

from django.urls import path

from visualizer.scenarios import views
from visualizer.scenarios.catalog import SCENARIOS

urlpatterns = [
    path("", views.home, name="home"),
    path("scenarios/<slug:slug>/", views.scenario_page, name="scenario"),
    path("scenarios/<slug:slug>/run/", views.scenario_run, name="scenario-run"),
    # Where the page's WebSocket connects (served by Channels, see visualizer/routing.py).
    path("ws/scenarios/<slug:slug>/", views.no_websocket, name="scenario-socket"),
    # Each scenario's real view runs in the subject process (subject.py); here its address
    # passes requests on to it.
    *(
        path(f"run/{slug}/", views.run_in_subject, {"slug": slug}, name=f"run-{slug}")
        for slug in SCENARIOS
    ),
]
