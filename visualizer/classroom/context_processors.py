"""Template context every page needs: the class session this browser drives or follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject

from visualizer.classroom.models import ClassSession
from visualizer.classroom.session import (
    DRIVE_COOKIE,
    FOLLOW_COOKIE,
    FOLLOWABLE,
    drive_cookie_secret,
)


@dataclass(frozen=True)
class ClassContext:
    """``follow``: the session whose instructor this page follows (the follow view puts
    its own ``classroom`` in the page's context, which wins over this processor's);
    ``drive``: the live session this browser drives; ``rejoin``: a live session this
    browser joined and left to explore; ``page``: whether a class can follow this page;
    ``start_url``: this page, when a class could follow it and none is going on."""

    follow: ClassSession | None = None
    drive: ClassSession | None = None
    rejoin: ClassSession | None = None
    page: bool = False
    start_url: str = ""


def classroom(request: HttpRequest) -> dict[str, Any]:
    # Lazy: the database is asked only when a template shows it (full pages). Partials
    # rendered by async views (the lab's progress) never touch it, and must not.
    return {"classroom": SimpleLazyObject(lambda: class_context(request))}


def class_context(request: HttpRequest) -> ClassContext:
    try:
        followable = resolve(request.path_info).url_name in FOLLOWABLE
    except Resolver404:
        followable = False
    drive = request.COOKIES.get(DRIVE_COOKIE, "")
    if drive:
        code = drive.split(":", 1)[0]
        session = ClassSession.objects.filter(code=code, ended_at=None).first()
        if session is not None and session.is_driver(drive_cookie_secret(drive, code)):
            return ClassContext(drive=session, page=followable)
    joined = request.COOKIES.get(FOLLOW_COOKIE, "")
    if joined:
        session = ClassSession.objects.filter(code=joined, ended_at=None).first()
        if session is not None:
            return ClassContext(rejoin=session)
    return ClassContext(page=followable, start_url=request.get_full_path() if followable else "")
