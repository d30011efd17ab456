from __future__ import annotations

from django.apps import AppConfig


class VisualizerConfig(AppConfig):
    name = "visualizer"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from visualizer.scenarios import register_scenario_views

        register_scenario_views()
        # Read the practice bank now: a bad entry then stops the start with its message,
        # rather than the first visit to a page that lists the questions.
        import visualizer.practice  # noqa: F401

        post_migrate.connect(store_examples, sender=self)


def store_examples(**kwargs: object) -> None:
    """After migrations: store the bundled example traces that are not stored yet."""
    from visualizer.library import load_examples

    load_examples()
