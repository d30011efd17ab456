"""What the class socket sends: HTML that htmx's ws extension swaps in by id, each kind
rendered once from templates/classroom/frames.html. (No models here: the benches read
frames with FRAME_HEAD without setting Django up.)"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.template.loader import render_to_string

from visualizer.traces.narration import plural

# How a move frame starts (templates/classroom/frames.html): its version, action and URL.
FRAME_HEAD = re.compile(
    r'^<div id="class-move" hidden data-class-version="(\d+)" data-action="(\w+)"'
    r' data-url="([^"]*)"'
)


@dataclass(frozen=True)
class Frame:
    """What followers get when the instructor's page changes."""

    version: int
    url: str
    action: str  # "swap" (same page, new step), "load" (another page) or "end"
    html: str = ""

    def text(self) -> str:
        return render_to_string("classroom/frames.html#move", {"frame": self})


def status_frame(text: str) -> str:
    """A sentence for the class bar's status line (an error, or why the socket closes)."""
    return render_to_string("classroom/frames.html#status", {"text": text})


def followers_frame(count: int) -> str:
    followers = plural(count, "student")
    return render_to_string("classroom/frames.html#followers", {"followers": followers})
