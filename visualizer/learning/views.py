"""Learning pages built from one trace: its quiz and its transcript."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from visualizer.learning.quiz import hidden_parts, quiz_for
from visualizer.learning.transcript import build_transcript
from visualizer.scenarios.catalog import get_scenario
from visualizer.traces.sources import find_source, run_start_of, trace_context
from visualizer.traces.steps import NOT_SET, step_rows, tracker_variables, variable_tracker

# The quiz's tables show at most this many steps and tracker columns (and those the
# questions ask about): the player pages through the rest.
QUIZ_ROWS = 200
QUIZ_COLUMNS = 40


@require_safe
def trace_quiz(request: HttpRequest, recording_id: str) -> HttpResponse:
    """A quiz on one trace. Answers come back in the query (?q-pause=2…), so checking
    them stores nothing and any answer can be linked to."""
    source = find_source(recording_id)
    if source is None:
        raise Http404("No such trace.")
    focus, questions = quiz_for(source)
    answered = []
    chosen_by_key: dict[str, int | None] = {}
    for question in questions:
        raw = request.GET.get(f"q-{question.key}")
        chosen = int(raw) if question.is_right(raw) is not None and raw else None
        chosen_by_key[question.key] = chosen
        answered.append({"question": question, "chosen": chosen, "right": question.is_right(raw)})
    # Until a question is answered, what would give its answer away is not shown.
    hidden = hidden_parts(questions, chosen_by_key)
    events = source.request_events(focus, source.total) if focus else []
    received = source.received_ns({focus}) if focus else {}
    # A long trace's tables are cut to their start and the steps the questions are about.
    asked = {question.step for question in questions}
    shown = [e for i, e in enumerate(events) if i < QUIZ_ROWS or e["seq"] in asked]
    columns = [
        column
        for i, column in enumerate(variable_tracker(events, focus) if focus else [])
        if i < QUIZ_COLUMNS or column.step in asked
    ]
    context = {
        "recording_id": recording_id,
        "scenario": get_scenario(source.scenario_slug),
        "focus": focus,
        "answered": answered,
        "checked": any(item["chosen"] is not None for item in answered),
        "rows": step_rows(shown, received, run_start_of(source), trace_context(source)),
        "rows_left_out": len(events) - len(shown),
        "quiz_rows": QUIZ_ROWS,
        "total_rows": len(events),
        "tracker_columns": columns,
        "tracker_rows": [
            (name, [(c.values.get(name, NOT_SET), False) for c in columns])
            for name in tracker_variables(columns)
        ],
        "presenter": request.GET.get("presenter") == "1",
        "hidden": hidden,
    }
    return render(request, "learning/quiz.html", context)


@require_safe
def trace_transcript(
    request: HttpRequest, recording_id: str, markdown: bool = False
) -> HttpResponse:
    """The whole trace told in words, step by step: a page (to read, print or hear) or a
    Markdown download."""
    source = find_source(recording_id)
    if source is None:
        raise Http404("No such trace.")
    transcript = build_transcript(source)
    if markdown:
        response = HttpResponse(transcript.markdown(), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="transcript-{recording_id}.md"'
        return response
    context = {"transcript": transcript, "presenter": request.GET.get("presenter") == "1"}
    return render(request, "learning/transcript.html", context)
