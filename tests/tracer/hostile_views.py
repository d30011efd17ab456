"""Views whose locals fight back: their __repr__ raises, hangs or is enormous."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, JsonResponse
from django.urls import path

repr_calls: list[str] = []


class RaisingRepr:
    def __repr__(self) -> str:
        repr_calls.append("raising")
        raise RuntimeError("repr exploded")


class SlowRepr:
    def __repr__(self) -> str:
        repr_calls.append("slow")
        import time

        time.sleep(5)
        return "slow"


class HugeRepr:
    def __repr__(self) -> str:
        repr_calls.append("huge")
        return "x" * 50_000_000


class HostileStr(str):
    def __repr__(self) -> str:
        repr_calls.append("str")
        raise RuntimeError("str subclass repr exploded")


async def hostile_async(request: HttpRequest) -> JsonResponse:
    raising, slow, huge, text = RaisingRepr(), SlowRepr(), HugeRepr(), HostileStr("hi")
    await asyncio.sleep(0.01)
    return JsonResponse({"kinds": [type(v).__name__ for v in (raising, slow, huge, text)]})


def hostile_sync(request: HttpRequest) -> JsonResponse:
    raising, slow, huge, text = RaisingRepr(), SlowRepr(), HugeRepr(), HostileStr("hi")
    return JsonResponse({"kinds": [type(v).__name__ for v in (raising, slow, huge, text)]})


urlpatterns = [
    path("hostile-async/", hostile_async),
    path("hostile-sync/", hostile_sync),
]
