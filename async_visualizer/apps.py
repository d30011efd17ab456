"""The app: checks its settings and, when tracing is on, registers the views to trace."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

from async_visualizer.conf import get_config, tracer_settings
from tracer import django_integration, targets


class AsyncVisualizerConfig(AppConfig):
    name = "async_visualizer"
    verbose_name = "Async visualizer"

    def ready(self) -> None:
        """Called once Django's apps are loaded: the views' modules can be imported now.
        Nothing is instrumented here; trace_asgi() turns the tracer on."""
        config = get_config()
        django_integration.configure(tracer_settings(config))
        if not config["ENABLED"]:
            return
        try:
            targets.register(targets.resolve(config["VIEWS"], config["DEPTH"]))
        except targets.TargetError as error:
            raise ImproperlyConfigured(f'ASYNC_VISUALIZER["VIEWS"]: {error}') from None
