"""Context for the scenario page's templates, shared by the views (one client) and the live
stream (rendered once, sent to every watcher)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import reverse

from tracer.django_integration import RECORDING_ID, get_tracer
from visualizer.player import PlayerState, player_state
from visualizer.scenario_views import DEFAULT_CPU_WORK
from visualizer.scenarios import Scenario

MAX_PAGE_REQUESTS = 20
THEMES = (("auto", "System"), ("light", "Light"), ("dark", "Dark"))


class PageOptions:
    """What a visitor chose in the URL: recording, step, presenter mode and theme."""

    def __init__(self, query: QueryDict) -> None:
        self.errors: list[str] = []
        self.recording_id = query.get("recording") or None
        if self.recording_id and not RECORDING_ID.fullmatch(self.recording_id):
            self.errors.append("That recording id is not valid; showing no recording.")
            self.recording_id = None
        self.step: int | None = None
        raw_step = query.get("step")
        if raw_step:
            try:
                self.step = int(raw_step)
            except ValueError:
                self.errors.append(f"Step must be a whole number, not {raw_step[:20]!r}.")
        self.presenter = query.get("presenter") == "1"
        theme = query.get("theme", "")
        self.theme = theme if theme in dict(THEMES) else "auto"

    def query(self, **changes: Any) -> str:
        """This page's query string with some options changed, ending in "&" if not empty."""
        values = {
            "recording": self.recording_id,
            "presenter": "1" if self.presenter else None,
            "theme": self.theme if self.theme != "auto" else None,
        }
        values.update(changes)
        encoded = urlencode({key: value for key, value in values.items() if value})
        return f"{encoded}&" if encoded else ""


def load_document(recording_id: str | None) -> dict[str, Any] | None:
    if recording_id is None:
        return None
    recording = get_tracer().store.get(recording_id)
    return recording.document() if recording is not None else None


def player_context(
    scenario: Scenario,
    state: PlayerState,
    *,
    link_query: str,
    current_index: int | None,
    oob: bool = False,
    options: PageOptions | None = None,
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "state": state,
        "recording_id": state.recording_id or "",
        "link_query": link_query,
        "current_index": current_index,
        "page_url": reverse("scenario", args=[scenario.slug]),
        "oob": oob,
        "presenter": options.presenter if options else False,
        "theme_param": options.theme if options and options.theme != "auto" else None,
    }


def page_context(scenario: Scenario, options: PageOptions) -> dict[str, Any]:
    document = load_document(options.recording_id)
    notices = list(options.errors)
    if options.recording_id and document is None:
        notices.append(
            f"Recording {options.recording_id} is not on this server: recordings are kept in "
            "the server's memory (the latest 64) and are lost when it restarts."
        )
    state = player_state(scenario, document, options.step)
    context = player_context(
        scenario,
        state,
        link_query=options.query(),
        current_index=state.index,
        options=options,
    )
    context.update(
        notice=" ".join(notices),
        theme=options.theme,
        presenter_toggle_query=options.query(presenter=None if options.presenter else "1"),
        theme_links=[
            {"label": label, "current": value == options.theme, "query": options.query(theme=value)}
            for value, label in THEMES
        ],
        max_requests=MAX_PAGE_REQUESTS,
        defaults={"requests": 1, "delay_ms": 1000, "work": DEFAULT_CPU_WORK},
    )
    return context


def render_live_step(scenario: Scenario, document: dict[str, Any], seq: int) -> list[str]:
    """The frames for one new step of a live run: its row, appended to the table, then the
    step panels, narration and marker for that step. Rendered once for every watcher."""
    state = player_state(scenario, document, seq)
    context = player_context(
        scenario,
        state,
        link_query=f"recording={state.recording_id}&",
        current_index=None,
        oob=True,
    )
    return [
        render_to_string("scenario.html#live_row", context),
        render_to_string("scenario.html#live_panels", context),
    ]


def render_snapshot(scenario: Scenario, document: dict[str, Any] | None) -> str:
    """The whole player at the latest step, replacing what a (re)connected page shows."""
    state = player_state(scenario, document, None)
    context = player_context(
        scenario,
        state,
        link_query=f"recording={state.recording_id}&" if state.recording_id else "",
        current_index=None,
        oob=True,
    )
    return render_to_string("scenario.html#snapshot", context)


def render_status(text: str, *, running: bool) -> str:
    return render_to_string("scenario.html#status", {"status_text": text, "running": running})


def render_error(message: str) -> str:
    return render_to_string("scenario.html#error", {"error": message})
