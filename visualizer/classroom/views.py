"""Class sessions' pages: start one, show its join card, join, follow, end. The live part
is the class WebSocket (consumers.py)."""

from __future__ import annotations

import secrets

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import resolve, reverse
from django.views.decorators.http import require_POST, require_safe

from visualizer.classroom.context_processors import follower_context
from visualizer.classroom.models import ClassQuestion, ClassSession
from visualizer.classroom.questions import (
    STUDENT_COOKIE,
    STUDENT_ID,
    AnswerRefused,
    ask,
    close,
    question_frame,
    record_answer,
    reveal_answer,
    tell_instructor,
)
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
from visualizer.traces.steps import whole_number


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
    return _followed_page(request, session)


def _followed_page(
    request: HttpRequest, session: ClassSession, answer_error: str = "", status: int = 200
) -> HttpResponse:
    """The followed page, from the context its own view builds, with the class bar of a
    follower (a trace of a known scenario is shown on its scenario's page). The browser
    keeps the class's code, and an id of its own that its answers are counted by."""
    student = request.COOKIES.get(STUDENT_COOKIE)
    if student is None or not STUDENT_ID.fullmatch(student):
        student = secrets.token_urlsafe(16)
    follower = {"classroom": follower_context(session, student, answer_error)}
    path, _, query = session.url.partition("?")
    if resolve(path).url_name == "lab":
        context = {**lab_context(QueryDict(query)), **follower}
        response = render(request, "lab/lab.html", context, status=status)
    else:
        player = player_context_at(session.url)
        if player is None:
            raise Http404("The page this class follows is not on this server.")
        if player["scenario"] is not None:
            editor = editor_for(player["scenario"], player["edited_code"])
            editor.instructor_typed = session.typed_code_for(player["scenario"].slug)
            player["editor"] = editor
        response = render(request, "traces/player.html", {**player, **follower}, status=status)
    _set_cookie(response, request, FOLLOW_COOKIE, session.code)
    _set_cookie(response, request, STUDENT_COOKIE, student)
    return response


def _tell_class(code: str, frame: str, *, followers_only: bool = False, **extra: object) -> None:
    """Send a rendered frame to everyone in the class (or only to its followers)."""
    layer = get_channel_layer()
    if layer is not None:
        message = {"type": "class.state", "frame": frame, "followers_only": followers_only}
        async_to_sync(layer.group_send)(group_name(code), {**message, **extra})


def _driven(request: HttpRequest, code: str) -> ClassSession | None:
    """The live class, if this browser is its instructor's."""
    session = get_object_or_404(ClassSession, code=code, ended_at=None)
    secret = drive_cookie_secret(request.COOKIES.get(DRIVE_COOKIE), code)
    return session if session.is_driver(secret) else None


def _not_the_instructor() -> HttpResponse:
    return HttpResponseForbidden(
        "Only the instructor can ask, close or reveal a question.", content_type="text/plain"
    )


def _question_of(request: HttpRequest, session: ClassSession) -> ClassQuestion:
    number = whole_number(request.POST.get("question"))
    return get_object_or_404(ClassQuestion, session=session, pk=number or 0)


def _refused(error: AnswerRefused) -> HttpResponse:
    return HttpResponse(str(error), status=400, content_type="text/plain")


@require_POST
def class_ask(request: HttpRequest, code: str) -> HttpResponse:
    """The instructor puts one of the page's questions to the class."""
    session = _driven(request, code)
    if session is None:
        return _not_the_instructor()
    try:
        question = ask(session, request.POST.get("kind", ""))
    except AnswerRefused as error:
        return _refused(error)
    _tell_class(code, question_frame(question), followers_only=True)
    return redirect(session.url)


@require_POST
def class_close(request: HttpRequest, code: str) -> HttpResponse:
    """The instructor stops taking answers (the reveal is next)."""
    session = _driven(request, code)
    if session is None:
        return _not_the_instructor()
    question = _question_of(request, session)
    close(question)
    _tell_class(code, question_frame(question), followers_only=True)
    return redirect(session.url)


@require_POST
def class_reveal(request: HttpRequest, code: str) -> HttpResponse:
    """The instructor reveals the answer: the class sees who was right, as a share, and
    moves to the step that shows the answer."""
    session = _driven(request, code)
    if session is None:
        return _not_the_instructor()
    question = _question_of(request, session)
    try:
        answer_url = reveal_answer(question, session.url)
    except AnswerRefused as error:
        return _refused(error)
    _tell_class(code, question_frame(question), followers_only=True)
    previous = session.move_to(answer_url)
    if previous is not None:
        _tell_class(code, frame_for(session, previous).text())
    return redirect(answer_url)


@require_POST
def class_answer(request: HttpRequest, code: str) -> HttpResponse:
    """A follower's answer sent as a plain form (with JavaScript it goes over the class
    socket); a refused one is said on the page, beside the question."""
    session = get_object_or_404(ClassSession, code=code)
    if not session.live:
        return render(request, "classroom/join.html", {"ended": session}, status=410)
    try:
        answer = record_answer(session.pk, request.COOKIES.get(STUDENT_COOKIE), request.POST)
    except AnswerRefused as error:
        return _followed_page(request, session, answer_error=str(error), status=400)
    tell_instructor(code, answer)
    return redirect("class-follow", code=code)


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
    _tell_class(code, frame_for(session, None).text(), ended=True)
    response = redirect(session.url)
    response.delete_cookie(DRIVE_COOKIE)
    return response
