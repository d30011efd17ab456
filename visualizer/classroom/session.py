"""Class sessions: one instructor drives, the class follows.

The instructor's browser reports the URL it shows (a scenario step, a trace, the lab); the
server checks it, stores it, renders what followers need once, and sends that to the
class's group. Followers on the same page get the new step swapped in; on another page
they load it.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any
from urllib.parse import urlsplit

import segno
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse

from visualizer.classroom.frames import Frame
from visualizer.classroom.models import ClassSession
from visualizer.lab.runs import LabProgress, progress_context
from visualizer.scenarios.catalog import get_scenario
from visualizer.traces.pages import PageOptions, page_context
from visualizer.traces.sources import TraceSource, find_source

# No 0/O, 1/I/L: codes are read off a projector.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
MAX_URL_LENGTH = 1500
# Pages a class can follow (URL names).
FOLLOWABLE = ("scenario", "trace-player", "lab")
DRIVE_COOKIE = "class-drive"  # "<code>:<secret>", set for the instructor's browser
FOLLOW_COOKIE = "class-follow"  # the code of the class this browser joined
COOKIE_AGE = 12 * 3600


def group_name(code: str) -> str:
    return f"class-{code}"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str | None:
    """A join code as typed (any case, spaces or dashes) made canonical, or None."""
    code = "".join(ch for ch in raw.upper() if ch not in " -")
    if len(code) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in code):
        return code
    return None


def start_session(url: str) -> tuple[ClassSession, str]:
    """A new class session showing ``url`` (checked), and the instructor's secret."""
    url = followable_url(url)
    secret = secrets.token_urlsafe(32)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    while True:
        code = new_code()
        if not ClassSession.objects.filter(code=code).exists():
            return ClassSession.objects.create(code=code, secret_digest=digest, url=url), secret


def drive_cookie_secret(cookie: str | None, code: str) -> str | None:
    """The instructor's secret for this class, from their browser's cookie."""
    if not cookie or ":" not in cookie:
        return None
    cookie_code, secret = cookie.split(":", 1)
    return secret if cookie_code == code else None


def followable_url(url: object) -> str:
    """A page of this site a class can follow, as path and query; ValueError says why not."""
    if not isinstance(url, str) or not url:
        raise ValueError("url must be a non-empty string.")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"url may be at most {MAX_URL_LENGTH} characters.")
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        raise ValueError("url must be a path on this site.")
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise ValueError("url is not a page of this site.") from None
    if match.url_name not in FOLLOWABLE:
        raise ValueError("A class can follow a scenario, a trace or the lab.")
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def frame_for(session: ClassSession, previous_url: str | None) -> Frame:
    """Render the session's current state once, for all its followers. A step of the page
    they already show is swapped in; anything else (another page, presenter mode or theme
    changed) is loaded."""
    if not session.live:
        return Frame(session.version, session.url, "end")
    html = step_html(session.url) if _same_page(previous_url, session.url) else None
    if html is None:
        return Frame(session.version, session.url, "load")
    return Frame(session.version, session.url, "swap", html)


def _same_page(previous: str | None, current: str) -> bool:
    if previous is None:
        return False
    before, after = urlsplit(previous), urlsplit(current)
    if before.path != after.path:
        return False
    keep = ("presenter", "theme")
    old, new = QueryDict(before.query), QueryDict(after.query)
    return all(old.get(name) == new.get(name) for name in keep)


def player_context_at(url: str) -> dict[str, Any] | None:
    """What the scenario page or the trace player (as its scenario's page, when the
    scenario is known) puts in its template for this URL; None for a page without a
    player, or whose scenario or trace this server does not know (their views answer
    404). A recording named in a scenario page's query but not found is said on the page,
    as that view says it."""
    parts = urlsplit(url)
    match = resolve(parts.path)
    options = PageOptions(QueryDict(parts.query))
    source: TraceSource | None = None
    if match.url_name == "scenario":
        scenario = get_scenario(match.kwargs["slug"])
        if scenario is None:
            return None
        source = find_source(options.recording_id) if options.recording_id else None
    elif match.url_name == "trace-player":
        options.recording_id = match.kwargs["recording_id"]
        source = find_source(options.recording_id)
        if source is None:
            return None
        scenario = get_scenario(source.scenario_slug)
    else:
        return None
    return page_context(scenario, options, source=source)


def step_html(url: str) -> str | None:
    """The player of a scenario or trace page at this URL, as htmx swaps it in (the same
    partial as a step link's answer); None for pages that have no player, or whose
    recording is not here (a live run recorded by another server process: followers then
    load the page instead, from whichever process has it)."""
    context = player_context_at(url)
    asked = PageOptions(QueryDict(urlsplit(url).query)).recording_id
    if context is None or (asked and not context["recording_id"]):
        return None
    return render_to_string("traces/player.html#step_response", context)


MIRROR_EVERY = 1.0  # seconds between frames of a lab run shown to a class
MIRROR_LANES = 40  # request lanes in those frames (each frame goes to every follower)


async def mirror_lab_run(progress: LabProgress, code: str) -> None:
    """Show the class a lab run its instructor started, as it goes: the progress panel,
    rendered once a second for everyone (in a worker thread, so that drawing it does not
    hold up the event loop the run is measured on). It stops when the run is done (the
    instructor's page then moves to the results, and the class loads them), when the
    class ends, or when the class no longer follows the lab."""
    layer = get_channel_layer()
    if layer is None or progress.task is None:
        return
    while await database_sync_to_async(_follows_the_lab)(code):
        html = await asyncio.to_thread(_mirrored_panel, progress)
        await layer.group_send(group_name(code), {"type": "class.state", "frame": html})
        if progress.finished:
            return
        await asyncio.wait([progress.task], timeout=MIRROR_EVERY)
        if progress.finished and not progress.error:
            return


def _mirrored_panel(progress: LabProgress) -> str:
    context = progress_context(progress, max_requests=MIRROR_LANES)
    # Stripped: a class frame starts with the element that says what it is (classroom.js).
    return render_to_string("lab/lab.html#progress", {**context, "mirrored": True}).strip()


def _follows_the_lab(code: str) -> bool:
    session = ClassSession.objects.filter(code=code, ended_at=None).first()
    return session is not None and urlsplit(session.url).path == reverse("lab")


async def driven_class(cookie: str | None, on_path: str) -> str | None:
    """The code of the live class this browser drives, if the class follows a page at
    ``on_path``."""
    code = (cookie or "").split(":", 1)[0]
    session = await ClassSession.objects.filter(code=code, ended_at=None).afirst()
    if session is None or not session.is_driver(drive_cookie_secret(cookie, code)):
        return None
    return code if urlsplit(session.url).path == on_path else None


def join_qr_svg(join_url: str) -> str:
    """The join URL as a QR code, an inline SVG (drawn on the server, no script)."""
    qr = segno.make(join_url, error="m")
    # No width or height: a viewBox, so the page sizes it to fit a projector.
    return str(qr.svg_inline(border=2, omitsize=True, title="Join URL"))
