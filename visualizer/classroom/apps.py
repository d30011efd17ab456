from __future__ import annotations

from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    """Class sessions: one instructor drives, the class follows."""

    name = "visualizer.classroom"
