from __future__ import annotations

from django.apps import AppConfig


class LearningConfig(AppConfig):
    """Learning from traces: a trace's quiz and transcript, and the practice questions."""

    name = "visualizer.learning"

    def ready(self) -> None:
        # Read the practice bank now: a bad entry then stops the start with its message,
        # rather than the first visit to a page that lists the questions.
        import visualizer.learning.practice  # noqa: F401
