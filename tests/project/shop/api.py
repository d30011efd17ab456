"""django-ninja async API endpoints (a third-party package's views, from PyPI)."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest
from ninja import NinjaAPI, Schema

from shop.models import Order

api = NinjaAPI(urls_namespace="shop-api")


class OrderOut(Schema):
    customer: str
    total_cents: int


async def slow_lookup(delay: float) -> None:
    """A helper: stands for a slow upstream call."""
    await asyncio.sleep(delay)


@api.get("/orders", response=list[OrderOut])
async def list_orders(request: HttpRequest) -> list[Order]:
    await slow_lookup(0.02)
    return [order async for order in Order.objects.all()[:20]]


@api.post("/orders", response=OrderOut)
async def create_order(request: HttpRequest, payload: OrderOut) -> Order:
    return await Order.objects.acreate(**payload.model_dump())
