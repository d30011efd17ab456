"""Pages and endpoints of the visualizer (the scenario views are in scenario_views.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from tracer.django_integration import CLIENT_REF_HEADER, RECORDING_HEADER, RECORDING_ID, get_tracer
from tracer.validation import TraceRejected
from visualizer.archive import archiver
from visualizer.classroom import DRIVE_COOKIE, driven_class, mirror_lab_run
from visualizer.lab import (
    MAX_LAB_REQUESTS,
    OVERLAP_CHOICES,
    PHASE_LABELS,
    RUNNING,
    LabRun,
    form_values,
    lab_metrics,
    pause_choices,
    progress_context,
    reveal,
    run_lab,
    setup_of,
    start_lab,
    timeline,
)
from visualizer.library import EXPORT_FORMATS, STORED, export, import_document, trace_document
from visualizer.limits import LimitReached, client_of_request, limits, take_lab_run
from visualizer.models import Trace
from visualizer.moments import key_moments
from visualizer.narration import context_of_document
from visualizer.pages import PageOptions, display_options, page_context, view_option_links
from visualizer.run_state import interrupted, open_run, tracked_run
from visualizer.runs import RunFailed, RunRequest, new_recording_id, record_run, subject_base_url
from visualizer.scenarios import SCENARIOS, Scenario, get_scenario
from visualizer.sources import find_source
from visualizer.steps import (
    whole_number,
)
from visualizer.subject import Answer, feed, is_subject, pass_on, subject


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class HtmxASGIRequest(ASGIRequest):
    htmx: HtmxDetails


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    examples = Trace.objects.filter(source=Trace.Source.EXAMPLE).order_by("name")
    return render(request, "home.html", {"scenarios": SCENARIOS.values(), "examples": examples})


def _scenario_or_404(slug: str) -> Scenario:
    scenario = get_scenario(slug)
    if scenario is None:
        raise Http404("No such scenario.")
    return scenario


@require_safe
def scenario_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The player: a recording of the scenario at one step (?recording=…&step=N)."""
    scenario = _scenario_or_404(slug)
    options = PageOptions(request.GET)
    context = page_context(scenario, options)
    if request.htmx:
        return HttpResponse(render_to_string("scenario.html#step_response", context, request))
    return render(request, "scenario.html", context)


@require_POST
async def scenario_run(request: ASGIRequest, slug: str) -> HttpResponse:
    """Run the scenario without JavaScript: record the run, then show its first step."""
    scenario = _scenario_or_404(slug)
    client = client_of_request(request)
    try:
        run = RunRequest.from_values(scenario, request.POST)
        limits().check_work(run.requests, run.params)
        limits().live_runs.acquire(client)
    except LimitReached as error:
        return HttpResponse(f"Could not run: {error}", status=429, content_type="text/plain")
    except ValueError as error:
        return HttpResponse(f"Could not run: {error}", status=400, content_type="text/plain")
    recording_id = new_recording_id()
    try:
        async with tracked_run(recording_id, scenario):
            document = await record_run(
                await subject_base_url(),
                scenario,
                requests=run.requests,
                params=run.params,
                recording_id=recording_id,
            )
    except RunFailed as error:
        return HttpResponse(f"Could not run: {error}", status=400, content_type="text/plain")
    finally:
        limits().live_runs.release(client)
    return redirect(f"{reverse('scenario', args=[slug])}?recording={document['id']}&step=1")


@require_safe
def recording_json(request: HttpRequest, recording_id: str) -> JsonResponse:
    """A recording's trace document. One still in this server's memory is stored first, so
    a client that has fetched its run knows the run is in the library.

    In the UI it waits for the subject's events recorded so far to arrive first; in a
    subject started by a UI it waits for the UI to hold (and store) all of the recording,
    then answers with its own copy."""
    sink = feed()
    if sink is not None:
        recording = get_tracer().store.get(recording_id)
        if recording is None:
            raise Http404("No recording with that id on this server.")
        sink.sync(recording_id)
        return JsonResponse(recording.document())
    if not is_subject():
        subject.flush()
    recording = get_tracer().store.get(recording_id)
    if recording is not None:
        archiver.save_now(recording)
    document = trace_document(recording_id)
    if document is None:
        raise Http404("No recording with that id on this server.")
    return JsonResponse(document)


PASSED_HEADERS = (RECORDING_HEADER, CLIENT_REF_HEADER)
# Requests being passed on to the subject, kept until it answers (a client may leave first).
PASSING_ON: set[asyncio.Future[Answer]] = set()


async def run_in_subject(request: ASGIRequest, slug: str = "") -> HttpResponse:
    """A scenario's address in the UI: pass the request on to the same address in the
    subject process, where its real view runs, and its answer back (status, body, content
    type). The time this takes is spent on the UI's event loop, not the subject's."""
    if slug:
        _scenario_or_404(slug)
    scope = request.scope
    query = scope.get("query_string", b"")
    target = scope.get("raw_path") or request.path.encode()
    passed = [(name, value) for name, value in scope.get("headers", []) if name in PASSED_HEADERS]
    body, client = request.body, client_of_request(request)
    try:
        limits().view_requests.acquire(client)
    except LimitReached as error:
        return HttpResponse(f"Not run: {error}", status=429, content_type="text/plain")
    try:
        base_url = await subject_base_url()
    except BaseException as error:
        limits().view_requests.release(client)
        if isinstance(error, RunFailed):
            return HttpResponse(str(error), status=503, content_type="text/plain")
        raise
    method, path = request.method or "GET", target + (b"?" + query if query else b"")
    sent = asyncio.ensure_future(pass_on(base_url, method, path, passed, body))
    PASSING_ON.add(sent)

    def give_back(done: asyncio.Future[Answer]) -> None:
        PASSING_ON.discard(done)
        limits().view_requests.release(client)
        if not done.cancelled():
            done.exception()  # seen here too, for when the client has gone

    # The place stands for the subject's work: given back once the subject has answered,
    # not when the client hangs up (the view goes on computing after that).
    sent.add_done_callback(give_back)
    try:
        answer = await asyncio.shield(sent)
    except (OSError, TimeoutError) as error:
        return HttpResponse(
            f"The scenario server (the subject process) did not answer: {error!r}",
            status=502,
            content_type="text/plain",
        )
    content_type = next((v for n, v in answer.headers if n.lower() == "content-type"), None)
    return HttpResponse(answer.body, status=answer.status, content_type=content_type)


# Refusals whose message is this app's own sentence, or one of Django's fixed ones naming
# the upload bound that was passed (settings.py).
TOLD_AS_THEY_SAY = (BadRequest, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (handler400): a scenario view's parameter out of range, or a body past
    Django's upload bounds, is told as it says; anything else Django refused (a disallowed
    host, say) gets a short sentence, as Django's own page would."""
    if isinstance(exception, TOLD_AS_THEY_SAY):
        reason = str(exception)
    else:
        reason = "The server could not understand the request."
    return HttpResponse(f"Bad request: {reason}", status=400, content_type="text/plain")


def no_websocket(request: HttpRequest, slug: str) -> HttpResponse:
    """The WebSocket URL reached over plain HTTP."""
    return HttpResponse("This address takes WebSocket connections.", status=426)


@require_safe
def library(request: HttpRequest) -> HttpResponse:
    """Stored traces; its forms (import, rename) post back with a CSRF token."""
    return render(request, "library.html", library_context(request.GET.get("scenario", "")))


def library_context(scenario_filter: str, **extra: object) -> dict[str, object]:
    # The parts WSGI workers store of a lab run going on become its one trace at its end.
    traces = Trace.objects.exclude(status=Trace.Status.RECORDING, recording_id__regex=r"-w\d+$")
    if scenario_filter:
        traces = traces.filter(scenario_slug=scenario_filter)
    return {
        "traces": traces[:500],
        "scenarios": SCENARIOS.values(),
        "scenario_filter": scenario_filter,
        "max_upload_mb": settings.TRACE_IMPORT_MAX_BYTES / 1024 / 1024,
        **extra,
    }


@require_POST
def import_upload(request: HttpRequest) -> HttpResponse:
    """Import an uploaded trace file; a rejected file is explained and nothing is stored.
    Its size (by Content-Length) and the import limits are checked before this view reads
    the upload. (Under Daphne a body over the size is refused before it arrives,
    visualizer/request_limits.py; one within it has been parsed already by the CSRF check,
    which looks for the form's token, so what the limits spare is reading and checking
    the file.)"""
    announced = _content_length(request)
    if announced > settings.UPLOAD_MAX_BYTES:
        return _import_problem(
            request,
            f"The upload is {announced} bytes; a trace file may have at most "
            f"{settings.TRACE_IMPORT_MAX_BYTES} bytes.",
            status=413,
        )
    client = client_of_request(request)
    try:
        with limits().imports_at_once.hold(client):
            limits().imports.check(client)
            return _import(request)
    except LimitReached as limit:
        return _import_problem(request, f"The file was not imported. {limit}", status=429)


def _import(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        return _import_problem(request, "Choose a trace file (.json) to import.")
    if upload.size is not None and upload.size > settings.TRACE_IMPORT_MAX_BYTES:
        return _import_problem(
            request,
            f"The file is {upload.size} bytes; the limit is "
            f"{settings.TRACE_IMPORT_MAX_BYTES} bytes.",
            status=413,
        )
    try:
        imported = import_document(upload.read())
    except TraceRejected as rejection:
        return _import_problem(request, f"The file was not imported. {rejection}")
    url = reverse("trace-player", args=[imported.trace.recording_id])
    if imported.outcome == STORED:
        return redirect(url)
    query = urlencode({"imported": imported.outcome, "from": imported.document_id})
    return redirect(f"{url}?{query}")


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _import_problem(request: HttpRequest, error: str, status: int = 400) -> HttpResponse:
    """The library page, saying why nothing was imported."""
    return render(request, "library.html", library_context("", import_error=error), status=status)


@require_POST
def rename_trace(request: HttpRequest, recording_id: str) -> HttpResponse:
    trace = get_object_or_404(Trace, recording_id=recording_id)
    name = request.POST.get("name", "").strip()
    if not name or len(name) > 200:
        context = library_context(
            "", rename_error=(trace.recording_id, "A name needs 1 to 200 characters.")
        )
        return render(request, "library.html", context, status=400)
    trace.rename(name)
    return redirect("library")


def delete_trace(request: HttpRequest, recording_id: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    trace = get_object_or_404(Trace, recording_id=recording_id)
    if request.method == "POST":
        trace.delete()
        return redirect("library")
    return render(request, "delete_trace.html", {"trace": trace})


@require_safe
def trace_player(request: HtmxHttpRequest, recording_id: str) -> HttpResponse:
    """A stored trace in the player: on its scenario's page when the scenario is known."""
    source = find_source(recording_id)
    if source is None:
        raise Http404("No such trace.")
    if get_scenario(source.scenario_slug) is not None:
        url = reverse("scenario", args=[source.scenario_slug])
        query = request.GET.copy()
        query["recording"] = recording_id
        return redirect(f"{url}?{query.urlencode()}")
    options = PageOptions(request.GET)
    options.recording_id = recording_id
    context = page_context(None, options, source=source)
    if request.htmx:
        return HttpResponse(render_to_string("scenario.html#step_response", context, request))
    return render(request, "scenario.html", context)


@require_safe
def export_trace(request: HttpRequest, recording_id: str, export_format: str) -> HttpResponse:
    """The trace document (or its Chrome Trace Event form) as a download."""
    document = trace_document(recording_id)
    if document is None:
        raise Http404("No such trace.")
    response = HttpResponse(export(document, export_format), content_type="application/json")
    suffix = EXPORT_FORMATS[export_format]
    response["Content-Disposition"] = f'attachment; filename="trace-{recording_id}{suffix}.json"'
    return response


@require_safe
def lab(request: HtmxHttpRequest) -> HttpResponse:
    """The lab: the run form, and the results of one run (or two, side by side)."""
    runs: list[dict[str, Any]] = []
    for key in ("recording", "compare"):
        recording_id = request.GET.get(key, "")
        if not recording_id:
            continue
        document = trace_document(recording_id)
        if document is None:
            raise Http404(f"No recording {recording_id} on this server.")
        lanes, length_ms = timeline(document)
        runs.append(
            {
                "document": document,
                "interrupted": interrupted(recording_id),
                "metrics": lab_metrics(document),
                "lanes": lanes,
                "length_ms": length_ms,
                "moments": key_moments(
                    document["events"], document["requests"], context_of_document(document)
                ),
            }
        )
    prediction = None
    predictions = [request.GET.get(name) for name in PREDICTIONS]
    if runs and any(predictions):
        overlap, wall, pause = predictions
        prediction = reveal(
            runs[0]["document"],
            overlap,
            whole_number(wall),
            pause,
        )
    # The form starts as the URL sets it up, else as the run shown was set up.
    values: Mapping[str, Any] = request.GET
    if runs and "scenario" not in request.GET:
        values = setup_of(runs[0]["document"])
    scenario = get_scenario(values.get("scenario") or "")
    presenter, theme = display_options(request.GET)
    kept = {key: request.GET.get(key) for key in request.GET if key not in ("presenter", "theme")}
    context = {
        **_lab_form_context(request.GET.get("recording", ""), scenario, values),
        **view_option_links(kept, presenter=presenter, theme=theme),
        "runs": runs,
        "prediction": prediction,
    }
    if request.htmx and request.htmx.target == "pause-question":
        return render(request, "lab.html#pause_question", context)
    return render(request, "lab.html", context)


PREDICTIONS = ("predict_overlap", "predict_wall_ms", "predict_pause")
# Lab runs being shown to a class (kept so that their tasks are not collected).
MIRRORS: set[asyncio.Task[None]] = set()


def _lab_form_context(
    recording: str, scenario: Scenario | None = None, values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    scenario = scenario or next(iter(SCENARIOS.values()))
    return {
        "scenarios": SCENARIOS.values(),
        "form": form_values(values or QueryDict(), scenario),
        "pause_choices": pause_choices(scenario),
        "recording": recording,
        "phases": PHASE_LABELS,
        "overlap_choices": OVERLAP_CHOICES,
        "max_requests": MAX_LAB_REQUESTS,
    }


def _lab_problem(
    request: HtmxHttpRequest | HtmxASGIRequest, message: str, status: int = 400
) -> HttpResponse:
    """A run that cannot start or failed: said in the page (htmx) or as plain text."""
    if request.htmx:
        # htmx swaps only successful answers; the message replaces the progress panel.
        return render(request, "lab.html#lab_problem", {"message": message})
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
    try:
        setup = LabRun.from_values(scenario, request.POST)
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
        # knows it (visualizer/run_state.py).
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
        return render(request, "lab.html#progress", progress_context(progress))
    try:
        await run_lab(setup, base_url, recording_id)
    except (RunFailed, RuntimeError, OSError) as error:
        return _lab_problem(request, f"Could not run: {error}")
    finally:
        give_back()
    return redirect(results_url)


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
            return render(request, "lab.html#elsewhere", {})
        # Interrupted (the server stopped mid-run), or gone (deleted since).
        ended = {"ended": {"trace": trace}}
        if request.htmx:
            return render(request, "lab.html#ended", ended)
        context = {**_lab_form_context(""), **ended, "runs": []}
        return render(request, "lab.html", context, status=200 if trace else 404)
    if progress.finished and not progress.error:
        if request.htmx:
            return HttpResponseClientRedirect(progress.results_url)
        return redirect(progress.results_url)
    if request.htmx:
        return render(request, "lab.html#progress", progress_context(progress))
    form_context = _lab_form_context("", progress.lab.scenario)
    context = {**form_context, **progress_context(progress), "runs": []}
    return render(request, "lab.html", context)
