from __future__ import annotations

from django.apps import AppConfig


class LabConfig(AppConfig):
    """The concurrency lab: many requests at once on a chosen server, predicted, then
    measured."""

    name = "visualizer.lab"
