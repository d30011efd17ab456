"""The real recorded runs of tests/tracer/conftest.py, for the player's picture and bars."""

from __future__ import annotations

from tests.tracer.conftest import (  # noqa: F401
    async_cpu_run,
    async_io_run,
    sync_io_run,
    wsgi_sync_io_run,
)
