"""WebSocket routes, wrapped as the ASGI application serves them."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path, re_path

from visualizer.classroom.consumers import ClassConsumer
from visualizer.scenarios.consumers import ScenarioConsumer


class NoSuchSocket(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Any other WebSocket path: accepted, then closed with 4404, so that a client sees a
    clean "not found" (and an htmx page stops reconnecting) instead of a server error."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=4404)


websocket_urlpatterns = [
    path("ws/scenarios/<slug:slug>/", ScenarioConsumer.as_asgi()),
    # Class codes are letters and digits (visualizer/classroom/session.py); other text never
    # reaches the consumer, whose group name is made from the code.
    re_path(r"^ws/class/(?P<code>[A-Za-z0-9]{1,16})/$", ClassConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),
]


def websocket_application() -> Any:
    """Cross-origin connections are refused (ALLOWED_HOSTS decides what is same-origin)."""
    return AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns))
