"""Gunicorn's settings for the servers started by server_process.GunicornServer (the lab's
WSGI runs): the master watches the process that started it and, once that has ended,
kills its process group, workers and all, before they store anything more of a run that
can no longer finish (visualizer/lifeline.py)."""

from __future__ import annotations

from typing import Any

from visualizer import lifeline


def on_starting(server: Any) -> None:
    lifeline.watch_parent(lifeline.kill_own_group)


def post_worker_init(worker: Any) -> None:
    """Each worker starts its services before it takes a request (visualizer/runtime.py)."""
    from visualizer.wsgi import application

    application.start()
