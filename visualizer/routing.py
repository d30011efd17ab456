from __future__ import annotations

from django.urls import path

from visualizer.consumers import ScenarioConsumer

websocket_urlpatterns = [
    path("ws/scenarios/<slug:slug>/", ScenarioConsumer.as_asgi()),
]
