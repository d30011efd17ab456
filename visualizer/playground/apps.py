from __future__ import annotations

from django.apps import AppConfig


class PlaygroundConfig(AppConfig):
    """The playground: a scenario's view edited by a visitor, checked here, run in a
    sandboxed worker process, its trace shown in the player."""

    name = "visualizer.playground"
