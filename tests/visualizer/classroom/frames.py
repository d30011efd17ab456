"""Reading what the class socket sends (templates/classroom/frames.html) in tests."""

from __future__ import annotations

import html
import re
from typing import Any

from visualizer.classroom.frames import FRAME_HEAD

FOLLOWERS = re.compile(
    r'<p id="class-followers" hx-swap-oob="innerHTML">(\d+) students? connected</p>'
)
STATUS = re.compile(r'<p id="class-status" hx-swap-oob="innerHTML">(.*)</p>', re.DOTALL)


def decode(text: str) -> dict[str, Any]:
    """A frame as what it says: a move (version, action, url and the html after its head),
    a follower count, a status line, the instructor's lab run, or the instructor's code
    as they type it."""
    if head := FRAME_HEAD.match(text):
        rest = text[text.index("</div>") + len("</div>") :]
        return {
            "version": int(head[1]),
            "action": head[2],
            "url": html.unescape(head[3]),
            "html": rest,
        }
    if count := FOLLOWERS.fullmatch(text):
        return {"followers": int(count[1])}
    if status := STATUS.fullmatch(text):
        return {"status": html.unescape(status[1])}
    if text.startswith('<section id="lab-live"'):
        return {"progress": text}
    if text.startswith('<div id="class-code"'):
        return {"code": text}
    raise AssertionError(f"not a class frame: {text[:300]!r}")
