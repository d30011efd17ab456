"""WebSocket routes, wrapped as the ASGI application serves them."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from visualizer.class_consumer import ClassConsumer
from visualizer.consumers import ScenarioConsumer

websocket_urlpatterns = [
    path("ws/scenarios/<slug:slug>/", ScenarioConsumer.as_asgi()),
    path("ws/class/<str:code>/", ClassConsumer.as_asgi()),
]


def websocket_application() -> Any:
    """Cross-origin connections are refused (ALLOWED_HOSTS decides what is same-origin)."""
    return AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns))
