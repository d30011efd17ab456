"""The recordings of this process, for staff: the list, one recording at a step (the player's
picture of the server, time strip and key moments, its table and where its time went), and
its trace document to download. Nothing is sent anywhere else."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.shortcuts import render

from async_visualizer.conf import get_config
from async_visualizer.report import recording_report
from tracer.django_integration import RECORDING_ID, get_tracer
from tracer.recorder import Recording

# The player's style sheets (links to this project's static/visualizer/, files in the
# wheel), put inline: the project need not serve this app's static files.
STYLESHEETS = ("app.css", "picture.css")


@cache
def _stylesheet() -> str:
    static = Path(__file__).parent / "static" / "async_visualizer"
    return "\n".join((static / name).read_text() for name in STYLESHEETS)


def _staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff users only (any signed-in user with STAFF_ONLY False); others are sent to the
    login page, or refused if signed in."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), getattr(settings, "LOGIN_URL", None))
        if get_config()["STAFF_ONLY"] and not user.is_staff:
            return HttpResponseForbidden("Staff only.")
        return view(request, *args, **kwargs)

    return checked


def _recording(recording_id: str) -> Recording:
    found = get_tracer().store.get(recording_id) if RECORDING_ID.fullmatch(recording_id) else None
    if found is None:
        raise Http404("No such recording in this process.")
    return found


@_staff_only
def recordings(request: HttpRequest) -> HttpResponse:
    listed = [
        {"id": recording.id, "recorded_at": recording.recorded_at, "requests": recording.requests}
        for recording in get_tracer().store.recordings()
    ]
    return render(
        request,
        "async_visualizer/recordings.html",
        {"recordings": listed, "enabled": get_tracer().enabled},
    )


@_staff_only
def recording(request: HttpRequest, recording_id: str) -> HttpResponse:
    document = _recording(recording_id).document()
    total = len(document["events"])
    raw = request.GET.get("step", "1")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and 1 <= int(raw) <= total):
        return HttpResponseBadRequest(f"step must be a whole number from 1 to {total}.")
    return render(
        request,
        "async_visualizer/recording.html",
        {"report": recording_report(document, int(raw)), "stylesheet": _stylesheet()},
    )


@_staff_only
def export(request: HttpRequest, recording_id: str) -> HttpResponse:
    document = _recording(recording_id).document()
    response = HttpResponse(json.dumps(document, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="trace-{recording_id}.json"'
    return response
