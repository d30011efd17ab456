from __future__ import annotations

from django.apps import AppConfig


class VisualizerConfig(AppConfig):
    name = "visualizer"

    def ready(self) -> None:
        from visualizer.scenarios import register_scenario_views

        register_scenario_views()
