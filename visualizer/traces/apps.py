from __future__ import annotations

from django.apps import AppConfig


class TracesConfig(AppConfig):
    """Stored traces, the player, the live stream, the library and the archive."""

    name = "visualizer.traces"
    # The label of the app these models were first made in: existing databases keep their
    # tables (visualizer_trace, …) and their migration history as they are.
    label = "visualizer"
    verbose_name = "Traces"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(store_examples, sender=self)


def store_examples(**kwargs: object) -> None:
    """After migrations: store the bundled example traces that are not stored yet."""
    from visualizer.traces.library import load_examples

    load_examples()
