"""The shop's views: one of each kind the app must trace."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from django.views.decorators.http import require_GET
from django.views.generic import ListView

from shop.models import Order


def home(request: HttpRequest) -> HttpResponse:
    """A sync function view."""
    return HttpResponse("shop")


class OrderListView(ListView):  # type: ignore[type-arg]
    """A sync class-based view: ORM query and template."""

    model = Order
    template_name = "shop/orders.html"
    context_object_name = "orders"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().get(request, *args, **kwargs)


def orders_as_list() -> list[dict[str, Any]]:
    """A helper the async view calls through sync_to_async (an ORM query)."""
    return list(Order.objects.values("customer", "total_cents"))


class AsyncOrderView(View):
    """An async class-based view: an await of a sleep, then the ORM in a worker thread."""

    async def get(self, request: HttpRequest) -> JsonResponse:
        await asyncio.sleep(0.05)
        orders = await sync_to_async(orders_as_list)()
        count = await Order.objects.acount()
        return JsonResponse({"orders": orders, "count": count})


def timed(view: Any) -> Any:
    """A project decorator written with functools.wraps, for an async view."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = await view(request, *args, **kwargs)
        response["X-Timed"] = "1"
        return response

    return wrapper


def pause_the_loop() -> None:
    """A helper that blocks: called from an async view, it stalls the event loop."""
    time.sleep(0.1)


@login_not_required
@timed
async def sleepy_orders(request: HttpRequest) -> HttpResponse:
    """A decorated async view that blocks the loop in its helper: a stall to find."""
    pause_the_loop()
    return HttpResponse("slept")


@require_GET
def order_total(request: HttpRequest) -> JsonResponse:
    """A decorated sync function view (Django's own decorator)."""
    return JsonResponse({"total": sum(order.total_cents for order in Order.objects.all())})
