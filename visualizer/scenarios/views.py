"""The scenario pages: the list of scenarios, each scenario's player with its Run form, and
the addresses of the scenario views, passed on to the subject process."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from tracer.django_integration import CLIENT_REF_HEADER, RECORDING_HEADER
from visualizer.http import HtmxHttpRequest
from visualizer.limits import LimitReached, client_of_request, limits
from visualizer.playground.editor import editor_for
from visualizer.scenarios.catalog import SCENARIOS, Scenario, get_scenario
from visualizer.scenarios.forms import RunForm
from visualizer.scenarios.runs import (
    RunFailed,
    RunRequest,
    new_recording_id,
    record_run,
    subject_base_url,
)
from visualizer.scenarios.subject import Answer, pass_on
from visualizer.traces.models import Trace
from visualizer.traces.pages import PageOptions, page_context
from visualizer.traces.run_state import tracked_run


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    examples = Trace.objects.filter(source=Trace.Source.EXAMPLE).order_by("name")
    return render(
        request, "scenarios/home.html", {"scenarios": SCENARIOS.values(), "examples": examples}
    )


def _scenario_or_404(slug: str) -> Scenario:
    scenario = get_scenario(slug)
    if scenario is None:
        raise Http404("No such scenario.")
    return scenario


@require_safe
def scenario_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The player: a recording of the scenario at one step (?recording=…&step=N); its
    Edit this view panel with a suggested edit's code (?suggestion=…)."""
    scenario = _scenario_or_404(slug)
    options = PageOptions(request.GET)
    context = page_context(scenario, options)
    if request.htmx:
        return HttpResponse(render_to_string("traces/player.html#step_response", context, request))
    context["editor"] = editor_for(
        scenario, context["edited_code"], suggestion=request.GET.get("suggestion")
    )
    return render(request, "traces/player.html", context)


@require_POST
async def scenario_run(request: ASGIRequest, slug: str) -> HttpResponse:
    """Run the scenario without JavaScript: record the run, then show its first step."""
    scenario = _scenario_or_404(slug)
    client = client_of_request(request)
    form = RunForm(scenario, request.POST)
    if not form.is_valid():
        # The page again, each problem beside its field.
        page: HttpResponse = await database_sync_to_async(_page_with_form)(request, scenario, form)
        return page
    run = RunRequest(*form.checked())
    try:
        limits().check_work(run.requests, run.params)
        limits().live_runs.acquire(client)
    except LimitReached as error:
        return HttpResponse(f"Could not run: {error}", status=429, content_type="text/plain")
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


def _page_with_form(request: HttpRequest, scenario: Scenario, form: RunForm) -> HttpResponse:
    context = page_context(scenario, PageOptions(QueryDict()))
    context["run_form"] = form
    context["editor"] = editor_for(scenario)
    return render(request, "traces/player.html", context, status=400)


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


def no_websocket(request: HttpRequest, slug: str) -> HttpResponse:
    """The WebSocket URL reached over plain HTTP."""
    return HttpResponse("This address takes WebSocket connections.", status=426)
