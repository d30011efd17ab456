"""The recordings pages. A project mounts them with
``path("__visualizer__/", include("async_visualizer.urls"))``."""

from __future__ import annotations

from django.urls import path

from async_visualizer import views

app_name = "async_visualizer"
urlpatterns = [
    path("", views.recordings, name="recordings"),
    path("<str:recording_id>/", views.recording, name="recording"),
    path("<str:recording_id>/trace.json", views.export, name="export"),
]
