from __future__ import annotations

from django.apps import AppConfig


class ScenariosConfig(AppConfig):
    """The scenarios: their real views, the subject process that runs them, and their
    pages."""

    name = "visualizer.scenarios"

    def ready(self) -> None:
        from visualizer.scenarios.catalog import register_scenario_views

        register_scenario_views()
