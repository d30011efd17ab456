"""The app's pages mounted as a project mounts them, for tests that render them."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("__visualizer__/", include("async_visualizer.urls"))]
