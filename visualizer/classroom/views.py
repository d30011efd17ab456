"""Class sessions' pages: start one, show its join card, join, follow, end. The live part
is the class WebSocket (consumers.py)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import resolve, reverse
from django.views.decorators.http import require_POST, require_safe

from visualizer.classroom.context_processors import ClassContext
from visualizer.classroom.models import ClassSession
from visualizer.classroom.session import (
    COOKIE_AGE,
    DRIVE_COOKIE,
    FOLLOW_COOKIE,
    drive_cookie_secret,
    frame_for,
    group_name,
    join_qr_svg,
    normalize_code,
    player_context_at,
    start_session,
)
from visualizer.http import HtmxHttpRequest
from visualizer.lab.views import lab_context
from visualizer.playground.editor import editor_for


def _set_cookie(response: HttpResponse, request: HttpRequest, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


@require_POST
def class_start(request: HttpRequest) -> HttpResponse:
    """Start a class following the page the instructor is on; show its join card. The
    instructor's secret goes to their browser only, in a cookie."""
    try:
        session, secret = start_session(request.POST.get("url", ""))
    except ValueError as error:
        return HttpResponse(f"Cannot start a class: {error}", status=400, content_type="text/plain")
    response = redirect("class-card", code=session.code)
    _set_cookie(response, request, DRIVE_COOKIE, f"{session.code}:{secret}")
    return response


@require_safe
def class_card(request: HttpRequest, code: str) -> HttpResponse:
    """The join code, join URL and QR code, large enough to project."""
    session = get_object_or_404(ClassSession, code=code)
    path = reverse("class-follow", args=[code])
    join_url = (
        f"{settings.CLASS_URL}{path}" if settings.CLASS_URL else request.build_absolute_uri(path)
    )
    context = {"session": session, "join_url": join_url, "qr_svg": join_qr_svg(join_url)}
    return render(request, "classroom/class_card.html", context)


@require_safe
def join_class(request: HttpRequest) -> HttpResponse:
    """Type a join code; a known one leads to the class."""
    raw = request.GET.get("code")
    if raw is None:
        return render(request, "classroom/join.html", {})
    code = normalize_code(raw)
    if code is None or not ClassSession.objects.filter(code=code, ended_at=None).exists():
        message = f"No class is running with the code {raw[:20]!r}. Check the code on the screen."
        return render(
            request, "classroom/join.html", {"error": message, "typed": raw[:20]}, status=404
        )
    return redirect("class-follow", code=code)


@require_safe
def class_follow(request: HtmxHttpRequest, code: str) -> HttpResponse:
    """The page the instructor shows now, as a follower sees it: the same page, which
    then moves with the instructor's (see static/visualizer/classroom.js)."""
    session = get_object_or_404(ClassSession, code=code)
    if not session.live:
        return render(request, "classroom/join.html", {"ended": session}, status=410)
    response = _followed_page(request, session)
    _set_cookie(response, request, FOLLOW_COOKIE, code)
    return response


def _followed_page(request: HttpRequest, session: ClassSession) -> HttpResponse:
    """The followed page, from the context its own view builds, with the class bar of a
    follower (a trace of a known scenario is shown on its scenario's page)."""
    follower = {"classroom": ClassContext(follow=session)}
    path, _, query = session.url.partition("?")
    if resolve(path).url_name == "lab":
        return render(request, "lab/lab.html", {**lab_context(QueryDict(query)), **follower})
    context = player_context_at(session.url)
    if context is None:
        raise Http404("The page this class follows is not on this server.")
    if context["scenario"] is not None:
        context["editor"] = editor_for(context["scenario"], context["edited_code"])
    return render(request, "traces/player.html", {**context, **follower})


@require_POST
def class_end(request: HttpRequest, code: str) -> HttpResponse:
    """End the class (the instructor only): followers are told, and keep their page."""
    session = get_object_or_404(ClassSession, code=code)
    secret = drive_cookie_secret(request.COOKIES.get(DRIVE_COOKIE), code)
    if not session.is_driver(secret):
        return HttpResponse(
            "Only the instructor can end this class.", status=403, content_type="text/plain"
        )
    session.end()
    layer = get_channel_layer()
    if layer is not None:
        frame = frame_for(session, None).text()
        message = {"type": "class.state", "frame": frame, "ended": True}
        async_to_sync(layer.group_send)(group_name(code), message)
    response = redirect(session.url)
    response.delete_cookie(DRIVE_COOKIE)
    return response
