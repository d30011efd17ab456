"""Trace your own Django project's views: an installable app around ``tracer``.

Set-up (docs/trace-your-project.md): add ``"async_visualizer"`` to INSTALLED_APPS, name the
views in ``ASYNC_VISUALIZER = {"ENABLED": True, "VIEWS": [...]}``, and wrap the ASGI
application with ``async_visualizer.asgi.trace_asgi``.
"""
