"""Template context every page needs: the class session this browser drives or follows."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import Resolver404, resolve

from visualizer.classroom import DRIVE_COOKIE, FOLLOW_COOKIE, FOLLOWABLE, drive_cookie_secret
from visualizer.models import ClassSession


def classroom(request: HttpRequest) -> dict[str, Any]:
    """``class_follow``: the session whose instructor this page follows (set by the follow
    view); ``class_drive``: the live session this browser drives; ``class_rejoin``: a live
    session this browser joined and left to explore; ``class_page``: whether a class can
    follow this page; ``class_start_url``: this page, when a class could follow it."""
    follow = getattr(request, "class_follow", None)
    if follow is not None:
        return {"class_follow": follow}
    try:
        followable = resolve(request.path_info).url_name in FOLLOWABLE
    except Resolver404:
        followable = False
    drive = request.COOKIES.get(DRIVE_COOKIE, "")
    if drive:
        code = drive.split(":", 1)[0]
        session = ClassSession.objects.filter(code=code, ended_at=None).first()
        if session is not None and session.is_driver(drive_cookie_secret(drive, code)):
            return {"class_drive": session, "class_page": followable}
    joined = request.COOKIES.get(FOLLOW_COOKIE, "")
    if joined:
        session = ClassSession.objects.filter(code=joined, ended_at=None).first()
        if session is not None:
            return {"class_rejoin": session}
    return {"class_start_url": request.get_full_path()} if followable else {}
