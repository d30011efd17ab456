from __future__ import annotations

from django.urls import path

from visualizer.lab import views

# Included under "lab/" by visualizer/urls.py.
urlpatterns = [
    path("", views.lab, name="lab"),
    path("run/", views.lab_run, name="lab-run"),
    path("runs/<str:recording_id>/", views.lab_progress, name="lab-progress"),
]
