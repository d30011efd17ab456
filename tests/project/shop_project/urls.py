from __future__ import annotations

from django.urls import include, path
from shop import extra, views
from shop.api import api

urlpatterns = [
    path("", views.home),
    path("orders/", views.OrderListView.as_view()),
    path("orders/async/", views.AsyncOrderView.as_view()),
    path("orders/sleepy/", views.sleepy_orders),
    path("orders/total/", views.order_total),
    path("api/", api.urls),
    path("ping/", extra.ping),
    path("receipt/", extra.Receipt.as_view()),
    path("__visualizer__/", include("async_visualizer.urls")),
]
