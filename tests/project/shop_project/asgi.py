"""The test project's ASGI application, traced by the app (ASYNC_VISUALIZER)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_project.settings")

from async_visualizer.asgi import trace_asgi

application = trace_asgi(get_asgi_application())
