from __future__ import annotations

from django.urls import path

from visualizer.classroom import views
from visualizer.scenarios.views import no_websocket

urlpatterns = [
    path("class/start/", views.class_start, name="class-start"),
    path("class/<str:code>/", views.class_follow, name="class-follow"),
    path("class/<str:code>/card/", views.class_card, name="class-card"),
    path("class/<str:code>/end/", views.class_end, name="class-end"),
    path("class/<str:code>/ask/", views.class_ask, name="class-ask"),
    path("class/<str:code>/close/", views.class_close, name="class-close"),
    path("class/<str:code>/reveal/", views.class_reveal, name="class-reveal"),
    path("class/<str:code>/answer/", views.class_answer, name="class-answer"),
    path("join/", views.join_class, name="join"),
    # The class socket's address (visualizer/routing.py), for templates to name.
    path("ws/class/<str:slug>/", no_websocket, name="class-socket"),
]
