"""Views for tests/async_visualizer/test_targets.py: one of each kind targets resolve."""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views import View


def total(values: list[int]) -> int:
    return sum(rounded(value) for value in values)


def rounded(value: int) -> int:
    return round(value, -1)


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(total([1, 2])))


def wrapping(view: Any) -> Any:
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> Any:
        return view(request)

    return wrapper


def unwrapped_decorator(view: Any) -> Any:
    """A decorator that does not use functools.wraps: the view is only in its closure."""

    def wrapper(request: HttpRequest) -> Any:
        return view(request)

    return wrapper


@wrapping
def decorated(request: HttpRequest) -> HttpResponse:
    return HttpResponse("decorated")


@unwrapped_decorator
def hidden(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hidden")


class Orders(View):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(self.count()))

    def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("posted")

    def count(self) -> int:
        return total([3])


class AsyncOrders(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("async")


def make_view(helper: Any) -> Any:
    def made(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(helper([1])))

    return made


# A view that closes over a helper: not a decorator's wrapper.
made = make_view(total)
