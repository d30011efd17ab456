"""Context for the scenario page's templates, shared by the views (one client) and the live
stream (rendered once, sent to every watcher)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import reverse

from tracer.django_integration import RECORDING_ID
from tracer.events import TraceDocument, trace_document
from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.forms import RunForm
from visualizer.scenarios.scenario_views import DEFAULT_CPU_WORK, DEFAULT_FILE_KB
from visualizer.traces.library import compare_choices
from visualizer.traces.moments import MOMENT_KINDS, KeyMoment, key_moments
from visualizer.traces.narration import ms, plural
from visualizer.traces.player import PlayerState, player_state
from visualizer.traces.run_state import INTERRUPTED_TEXT, interrupted
from visualizer.traces.sources import (
    DocumentSource,
    StoredSource,
    TraceSource,
    edited_code_of,
    find_source,
    per_trace,
    run_start_of,
    trace_context,
)
from visualizer.traces.steps import step_rows
from visualizer.traces.threads import THREAD_KINDS, ThreadSummary, peak, thread_summary
from visualizer.traces.time_went import TimeWent, time_went


@per_trace
def key_moments_of(source: TraceSource) -> list[KeyMoment]:
    return key_moments(
        source.events_of_kinds(MOMENT_KINDS), source.requests(), trace_context(source)
    )


@per_trace
def measured(source: TraceSource) -> str:
    """One sentence of what the trace shown measured, for the scenario's summary card."""
    requests = [r for r in source.requests() if r["finished_ns"] is not None]
    if not requests:
        return ""
    slowest = max(
        finished - r["received_ns"] for r in requests if (finished := r["finished_ns"]) is not None
    )
    most = peak(requests)
    return (
        f"In the recording shown: {plural(len(requests), 'request')}; the slowest took "
        f"{ms(slowest)} in the server; at most {most} were in the server at once."
    )


THEMES = (("auto", "System"), ("light", "Light"), ("dark", "Dark"))
# The run form's values on the scenario page before the visitor changes them.
RUN_DEFAULTS = {
    "requests": 1,
    "delay_ms": 1000,
    "work": DEFAULT_CPU_WORK,
    "size_kb": DEFAULT_FILE_KB,
}


class PageOptions:
    """What a visitor chose in the URL: recording, step, presenter mode and theme."""

    def __init__(self, query: QueryDict) -> None:
        self.errors: list[str] = []
        self.recording_id = query.get("recording") or None
        if self.recording_id and not RECORDING_ID.fullmatch(self.recording_id):
            self.errors.append("That recording id is not valid; showing no recording.")
            self.recording_id = None
        self.step: int | None = None
        self.bad_step: str | None = None  # said once the number of steps is known
        raw_step = query.get("step")
        if raw_step:
            try:
                self.step = int(raw_step)
            except ValueError:
                self.bad_step = raw_step[:20]
        self.presenter, self.theme = display_options(query)
        # Just the player, for a frame in a course page (no site chrome, no run form).
        self.embed = query.get("embed") == "1"
        self.import_notice = _import_notice(query, self.recording_id)

    def query(self, **changes: Any) -> str:
        """This page's query string with some options changed, ending in "&" if not empty."""
        values = {
            "recording": self.recording_id,
            "presenter": "1" if self.presenter else None,
            "theme": self.theme if self.theme != "auto" else None,
            "embed": "1" if self.embed else None,
        }
        values.update(changes)
        encoded = urlencode({key: value for key, value in values.items() if value})
        return f"{encoded}&" if encoded else ""


def view_option_links(kept: Mapping[str, object], *, presenter: bool, theme: str) -> dict[str, Any]:
    """The presenter-mode toggle and the theme links of a page: each keeps the page's other
    parameters (``kept``) and its presenter mode and theme, changing only its own."""

    def query(**changes: object) -> str:
        values = {
            **kept,
            "presenter": "1" if presenter else None,
            "theme": theme if theme != "auto" else None,
            **changes,
        }
        return urlencode({key: value for key, value in values.items() if value})

    return {
        "presenter": presenter,
        "theme": theme,
        "presenter_toggle_query": query(presenter=None if presenter else "1"),
        "theme_links": [
            {"label": label, "current": value == theme, "query": query(theme=value)}
            for value, label in THEMES
        ],
    }


def display_options(query: QueryDict) -> tuple[bool, str]:
    """Presenter mode and theme, as the address asks for them."""
    theme = query.get("theme", "")
    return query.get("presenter") == "1", theme if theme in dict(THEMES) else "auto"


def _import_notice(query: QueryDict, recording_id: str | None) -> str:
    """What the library's import did, said on the page it leads to (only ids are taken
    from the address, checked: no text of the visitor's is shown)."""
    outcome, document_id = query.get("imported"), query.get("from") or ""
    if not recording_id or not RECORDING_ID.fullmatch(document_id):
        return ""
    if outcome == "already":
        return f"The library already held this trace ({document_id}): nothing was changed."
    if outcome == "renamed":
        return (
            f"The library already held a different trace with the id {document_id}, so this "
            f"one was stored as {recording_id}."
        )
    return ""


def cut_off(source: TraceSource) -> bool:
    """Whether the recording's run was interrupted (a stored trace knows it already)."""
    if isinstance(source, StoredSource):
        return source.trace.interrupted
    return interrupted(source.recording_id)


def interrupted_text(source: TraceSource) -> str:
    """Why the run was cut off: a limit of the playground for edited code that one
    stopped, else the server stopping."""
    code = edited_code_of(source)
    if code is not None and code.get("stopped"):
        return (
            f"This run of edited code was stopped before it finished: {code['stopped']} "
            "Its trace ends where it was stopped."
        )
    return INTERRUPTED_TEXT


def load_source(recording_id: str | None) -> TraceSource | None:
    return find_source(recording_id) if recording_id else None


def empty_source(recording_id: str) -> DocumentSource:
    """A recording with nothing in it yet, so a page can show its empty table."""
    return DocumentSource(
        trace_document(
            recording_id=recording_id,
            scenario=None,
            server={},
            tracer={},
            recorded_at="",
            requests=[],
            events=[],
        )
    )


@per_trace
def thread_use_of(source: TraceSource) -> ThreadSummary:
    """The OS threads the recording's requests held (visualizer/traces/threads.py)."""
    if isinstance(source, DocumentSource):
        samples = source.document().get("thread_samples")
    elif isinstance(source, StoredSource):
        samples = source.trace.header.get("thread_samples")
    else:
        samples = None
    return thread_summary(source.events_of_kinds(THREAD_KINDS), source.requests(), samples)


@per_trace
def time_went_of(source: TraceSource) -> TimeWent:
    """Where each request's time went, and the verdict (visualizer/traces/time_went.py)."""
    return time_went(source.document())


def player_context(
    scenario: Scenario | None,
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
        "page_url": reverse("scenario", args=[scenario.slug])
        if scenario
        else reverse("trace-player", args=[state.recording_id]),
        "oob": oob,
        "presenter": options.presenter if options else False,
        "theme_param": options.theme if options and options.theme != "auto" else None,
    }


def page_context(
    scenario: Scenario | None, options: PageOptions, source: TraceSource | None = None
) -> dict[str, Any]:
    source = source or load_source(options.recording_id)
    notices = list(options.errors)
    if options.import_notice:
        notices.append(options.import_notice)
    if options.recording_id and source is None:
        notices.append(f"There is no recording {options.recording_id} on this server.")
    elif source is not None and cut_off(source):
        notices.append(interrupted_text(source))
    state = player_state(scenario, source, options.step)
    if options.bad_step is not None:
        allowed = f" from 1 to {state.total}" if state.total else ""
        notices.insert(0, f"Step must be a whole number{allowed}, not {options.bad_step!r}.")
    context = player_context(
        scenario,
        state,
        link_query=options.query(),
        current_index=state.index,
        options=options,
    )
    context.update(
        moments=key_moments_of(source) if source is not None else [],
        thread_use=thread_use_of(source) if source is not None else None,
        time_went=time_went_of(source) if source is not None else None,
        measured=measured(source) if source is not None else "",
        notice=" ".join(notices),
        embed=options.embed,
        # A lazy query: read only when the page shows its "Compare with…" form.
        compare_choices=compare_choices(),
        # These links keep the step (player.js updates them as the step changes).
        **view_option_links(
            {"recording": options.recording_id, "step": options.step},
            presenter=options.presenter,
            theme=options.theme,
        ),
        run_form=RunForm(scenario, initial=RUN_DEFAULTS) if scenario is not None else None,
        # The code that ran, for a run of an edited view (the playground).
        edited_code=edited_code_of(source) if source is not None else None,
    )
    return context


def render_live_rows(document: TraceDocument, seqs: list[int]) -> str:
    """New rows of a live run, appended to the table: sent first, as they are cheap."""
    source = DocumentSource(document)
    events = [source.events[seq - 1] for seq in seqs]
    received = source.received_ns({e["request"] for e in events if e["request"]})
    rows = step_rows(events, received, run_start_of(source), trace_context(source))
    slug = source.scenario_slug
    context = {
        "new_rows": rows,
        "page_url": reverse("scenario", args=[slug])
        if slug
        else reverse("trace-player", args=[source.recording_id]),
        "recording_id": source.recording_id,
        "link_query": f"recording={source.recording_id}&",
        "current_index": None,
    }
    return render_to_string("traces/player.html#live_rows", context)


def render_live_panels(scenario: Scenario, document: TraceDocument, seq: int) -> str:
    """The step panels, narration and marker of a live run at step ``seq``."""
    # The page is shown as it was at that step, even if later events are already in.
    source = DocumentSource({**document, "events": document["events"][:seq]})
    state = player_state(scenario, source, seq)
    return render_to_string("traces/player.html#live_panels", _broadcast_context(scenario, state))


def render_snapshot(scenario: Scenario, source: TraceSource) -> str:
    """The whole player at the latest step, replacing what a (re)connected page shows."""
    state = player_state(scenario, source, None)
    context = {
        **_broadcast_context(scenario, state),
        "moments": key_moments_of(source),
        "thread_use": thread_use_of(source),
        "time_went": time_went_of(source),
    }
    return render_to_string("traces/player.html#snapshot", context)


def render_moments(scenario: Scenario, document: TraceDocument) -> str:
    """The key moments of a run that has just finished, where its requests' time went and
    the threads they held, swapped into the page."""
    source = DocumentSource(document)
    state = player_state(scenario, source, None)
    context = {
        **_broadcast_context(scenario, state),
        "moments": key_moments_of(source),
        "thread_use": thread_use_of(source),
        "time_went": time_went_of(source),
    }
    return "".join(
        render_to_string(f"traces/player.html#{partial}", context)
        for partial in ("key_moments", "time_went", "thread_use")
    )


def _broadcast_context(scenario: Scenario, state: PlayerState) -> dict[str, Any]:
    """Context for HTML sent over the WebSocket: swapped out of band, with links that do
    not know the visitor's own options (the page's script adds them)."""
    return player_context(
        scenario,
        state,
        link_query=f"recording={state.recording_id}&",
        current_index=None,
        oob=True,
    )


def snapshot_of(scenario: Scenario, recording_id: str) -> str | None:
    """The snapshot of a recording by id, if this server has it (may query the database);
    for a run that was cut off, with a status line that says so (the page may still say
    it is running: it was, when the server stopped)."""
    source = load_source(recording_id)
    if source is None:
        return None
    snapshot = render_snapshot(scenario, source)
    if cut_off(source):
        snapshot += render_status(interrupted_text(source), running=False)
    return snapshot


def render_status(text: str, *, running: bool) -> str:
    return render_to_string("traces/player.html#status", {"status_text": text, "running": running})


def render_error(message: str) -> str:
    return render_to_string("traces/player.html#error", {"error": message})
