"""The lab's pages: the run form, a run going on, and its results."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from channels.db import database_sync_to_async
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from tracer.django_integration import RECORDING_ID
from visualizer.classroom.session import DRIVE_COOKIE, driven_class, mirror_lab_run
from visualizer.http import HtmxASGIRequest, HtmxHttpRequest
from visualizer.lab.forms import MAX_LAB_REQUESTS, LabForm
from visualizer.lab.metrics import lab_metrics
from visualizer.lab.predictions import OVERLAP_CHOICES, pause_choices, pause_question, reveal
from visualizer.lab.runs import (
    RUNNING,
    LabRun,
    form_values,
    progress_context,
    run_lab,
    setup_of,
    start_lab,
)
from visualizer.limits import LimitReached, client_of_request, limits, take_lab_run
from visualizer.scenarios.catalog import SCENARIOS, Scenario, get_scenario
from visualizer.scenarios.runs import (
    RunFailed,
    RunRequest,
    new_recording_id,
    subject_base_url,
)
from visualizer.traces.library import (
    trace_document,
)
from visualizer.traces.models import Trace
from visualizer.traces.moments import key_moments
from visualizer.traces.narration import context_of_document
from visualizer.traces.pages import display_options, view_option_links
from visualizer.traces.run_state import interrupted, open_run
from visualizer.traces.steps import (
    whole_number,
)
from visualizer.traces.time_strip import lanes_of, step_times, time_strip
from visualizer.traces.time_went import time_went


@require_safe
def lab(request: HtmxHttpRequest) -> HttpResponse:
    """The lab: the run form, and the results of one run (or two, side by side)."""
    context = lab_context(request.GET)
    if request.htmx and request.htmx.target == "pause-question":
        return render(request, "lab/lab.html#pause_question", context)
    return render(request, "lab/lab.html", context)


def lab_context(query: QueryDict) -> dict[str, Any]:
    """The lab page's context for this query: the form, and the runs it names with what
    each measured (Http404 for a recording this server does not have)."""
    runs: list[dict[str, Any]] = []
    for key in ("recording", "compare"):
        recording_id = query.get(key, "")
        if not recording_id:
            continue
        document = trace_document(recording_id)
        if document is None:
            raise Http404(f"No recording {recording_id} on this server.")
        runs.append(
            {
                "document": document,
                "interrupted": interrupted(recording_id),
                "metrics": lab_metrics(document),
                "lanes": lanes_of(document),
                "moments": key_moments(
                    document["events"], document["requests"], context_of_document(document)
                ),
                "time_went": time_went(document),
            }
        )
    # Side by side, the runs' timelines share one axis: the longer run's.
    axis_ns = max((run["lanes"].length_ns for run in runs if run["lanes"]), default=None)
    for run in runs:
        lanes = run["lanes"]
        run["length_ms"] = lanes.length_ns / 1e6 if lanes else 0.0
        run["strip"] = (
            time_strip(
                lanes,
                axis_ns=axis_ns,
                times=step_times(run["document"]["events"]),
                max_requests=None,
            )
            if lanes
            else None
        )
    prediction = None
    predictions = [query.get(name) for name in PREDICTIONS]
    if runs and any(predictions):
        overlap, wall, pause = predictions
        prediction = reveal(
            runs[0]["document"],
            overlap,
            whole_number(wall),
            pause,
        )
    # The form starts as the URL sets it up, else as the run shown was set up.
    values: Mapping[str, Any] = query
    if runs and "scenario" not in query:
        values = setup_of(runs[0]["document"])
    scenario = get_scenario(values.get("scenario") or "")
    presenter, theme = display_options(query)
    kept = {key: query.get(key) for key in query if key not in ("presenter", "theme")}
    return {
        **_lab_form_context(query.get("recording", ""), scenario, values),
        **view_option_links(kept, presenter=presenter, theme=theme),
        "runs": runs,
        "prediction": prediction,
    }


PREDICTIONS = ("predict_overlap", "predict_wall_ms", "predict_pause")
# Lab runs being shown to a class (kept so that their tasks are not collected).
MIRRORS: set[asyncio.Task[None]] = set()


def _lab_form_context(
    recording: str,
    scenario: Scenario | None = None,
    values: Mapping[str, Any] | None = None,
    bound: LabForm | None = None,
) -> dict[str, Any]:
    scenario = scenario or next(iter(SCENARIOS.values()))
    form = form_values(values or QueryDict(), scenario)
    return {
        "scenarios": SCENARIOS.values(),
        "form": form,
        # The number fields, rendered from the form that checks them (limits and all);
        # after a refused run, with what was sent and each problem beside its field.
        "lab_form": bound or LabForm(scenario, initial=form),
        "pause_choices": pause_choices(scenario),
        "pause_question": pause_question(scenario),
        "recording": recording,
        "overlap_choices": OVERLAP_CHOICES,
        "max_requests": MAX_LAB_REQUESTS,
    }


def _lab_problem(
    request: HtmxHttpRequest | HtmxASGIRequest, message: str, status: int = 400
) -> HttpResponse:
    """A run that cannot start or failed: said in the page (htmx) or as plain text."""
    if request.htmx:
        # htmx swaps only successful answers; the message replaces the progress panel.
        return render(request, "lab/lab.html#lab_problem", {"message": message})
    return HttpResponse(message, status=status, content_type="text/plain")


@require_POST
async def lab_run(request: HtmxASGIRequest) -> HttpResponse:
    """Run the lab's requests for real. From the page (htmx) the run goes on in the
    background and the page follows it live; without JavaScript the answer comes when the
    run is done. Either way the results page is next (next to the previous run when asked
    to compare)."""
    scenario = get_scenario(request.POST.get("scenario", ""))
    if scenario is None:
        return _lab_problem(request, "Choose a scenario.")
    form = LabForm(scenario, request.POST)
    if not form.is_valid() and not request.htmx:
        # The page again, each problem beside its field.
        context = {**_lab_form_context("", scenario, request.POST, form), "runs": []}
        page: HttpResponse = await database_sync_to_async(render)(
            request, "lab/lab.html", context, status=400
        )
        return page
    try:
        setup = LabRun(scenario, *_run_of(form))
    except ValueError as error:
        return _lab_problem(request, f"Could not run: {error}")
    recording_id = new_recording_id()
    results_url = f"{reverse('lab')}?{_results_query(request.POST, scenario, recording_id)}"
    try:
        limits().check_work(setup.run.requests, setup.run.params)
        give_back = take_lab_run(client_of_request(request), wsgi=setup.server == "wsgi")
    except LimitReached as error:
        return _lab_problem(request, f"Could not run: {error}", status=429)
    try:
        base_url = await subject_base_url()
    except RunFailed as error:
        give_back()
        return _lab_problem(request, f"Could not run: {error}")
    if request.htmx:
        # Stored before the page hears of the run, so that any server process it polls
        # knows it (visualizer/traces/run_state.py).
        try:
            await database_sync_to_async(open_run)(recording_id, scenario)
        except BaseException:
            give_back()
            raise
        progress = start_lab(setup, base_url, recording_id, results_url)
        assert progress.task is not None
        progress.task.add_done_callback(lambda _: give_back())
        code = await driven_class(request.COOKIES.get(DRIVE_COOKIE), reverse("lab"))
        if code is not None:
            MIRRORS.add(task := asyncio.create_task(mirror_lab_run(progress, code)))
            task.add_done_callback(MIRRORS.discard)
        return render(request, "lab/lab.html#progress", progress_context(progress))
    try:
        await run_lab(setup, base_url, recording_id)
    except (RunFailed, RuntimeError, OSError) as error:
        return _lab_problem(request, f"Could not run: {error}")
    finally:
        give_back()
    return redirect(results_url)


def _run_of(form: LabForm) -> tuple[RunRequest, str, int, int]:
    requests, params, server, threads, workers = form.checked_lab()
    return RunRequest(requests, params), server, threads, workers


def _results_query(form: QueryDict, scenario: Scenario, recording_id: str) -> str:
    query = f"recording={recording_id}"
    overlap, wall, pause = (form.get(name, "") for name in PREDICTIONS)
    if overlap in OVERLAP_CHOICES:
        query += f"&predict_overlap={overlap}"
    if whole_number(wall) is not None:
        query += f"&predict_wall_ms={wall}"
    # The lines offered were those of the scenario the page showed; without JavaScript a
    # student may have picked another scenario after answering.
    if pause in pause_choices(scenario) and form.get("predict_pause_for") == scenario.slug:
        query += f"&predict_pause={pause}"
    previous = form.get("compare_with", "")
    if previous and RECORDING_ID.fullmatch(previous):
        query += f"&compare={previous}"
    presenter, theme = display_options(form)
    if presenter:
        query += "&presenter=1"
    if theme != "auto":
        query += f"&theme={theme}"
    return query


@require_safe
def lab_progress(request: HtmxHttpRequest, recording_id: str) -> HttpResponse:
    """A lab run going on: its timeline so far (polled by the page); once done, the
    results page; cut off, a page that says so and polls no more. (A plain view: its full
    page shows the class bar, which asks the database.)"""
    progress = RUNNING.get(recording_id)
    if progress is None:
        # Several server processes may share this address: another one may have started
        # the run (and stored it as recording). Its poll URL carries the results page's
        # query.
        if request.GET.get("recording") != recording_id:
            raise Http404("No lab run with that id is going on in this server.")
        trace = Trace.objects.filter(recording_id=recording_id).first()
        status = trace.current_status if trace is not None else None
        if status == Trace.Status.COMPLETE:
            results_url = f"{reverse('lab')}?{request.GET.urlencode()}"
            return (
                HttpResponseClientRedirect(results_url) if request.htmx else redirect(results_url)
            )
        if status == Trace.Status.RECORDING:
            if not request.htmx:
                return HttpResponse("The run is still going on; reload in a moment.", status=202)
            return render(request, "lab/lab.html#elsewhere", {})
        # Interrupted (the server stopped mid-run), or gone (deleted since).
        ended = {"ended": {"trace": trace}}
        if request.htmx:
            return render(request, "lab/lab.html#ended", ended)
        context = {**_lab_form_context(""), **ended, "runs": []}
        return render(request, "lab/lab.html", context, status=200 if trace else 404)
    if progress.finished and not progress.error:
        if request.htmx:
            return HttpResponseClientRedirect(progress.results_url)
        return redirect(progress.results_url)
    if request.htmx:
        return render(request, "lab/lab.html#progress", progress_context(progress))
    form_context = _lab_form_context("", progress.lab.scenario)
    context = {**form_context, **progress_context(progress), "runs": []}
    return render(request, "lab/lab.html", context)
