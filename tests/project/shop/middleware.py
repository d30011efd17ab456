"""A project middleware, sync and async capable, as a real project has."""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class ShopHeaderMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        response = self.get_response(request)
        response["X-Shop"] = "1"
        return response

    async def _acall(self, request: Any) -> Any:
        response = await self.get_response(request)
        response["X-Shop"] = "1"
        return response
