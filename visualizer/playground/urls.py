from __future__ import annotations

from django.urls import path

from visualizer.playground import views

urlpatterns = [
    path("scenarios/<slug:slug>/edit/", views.edited_run, name="scenario-edit"),
]
