"""Views traced by @trace rather than by a pattern in ASYNC_VISUALIZER["VIEWS"]."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, HttpResponse
from django.views import View

from async_visualizer.decorators import trace


@trace
async def ping(request: HttpRequest) -> HttpResponse:
    await wait_a_little()
    return HttpResponse("pong")


async def wait_a_little() -> None:
    """Defined after the view that names it: @trace finds it once the module is loaded."""
    await asyncio.sleep(0.01)


@trace
class Receipt(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("receipt")
