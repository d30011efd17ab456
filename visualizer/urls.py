"""The site's URLs: each app's own, side by side (the subject process has its own,
visualizer/scenarios/subject_urls.py)."""

from __future__ import annotations

from django.urls import include, path

# A parameter a view refuses is explained, not a bare "Bad Request (400)" page.
handler400 = "visualizer.http.bad_request"

urlpatterns = [
    path("", include("visualizer.scenarios.urls")),
    path("", include("visualizer.traces.urls")),
    path("lab/", include("visualizer.lab.urls")),
    path("", include("visualizer.classroom.urls")),
    path("", include("visualizer.learning.urls")),
    path("", include("visualizer.playground.urls")),
]
