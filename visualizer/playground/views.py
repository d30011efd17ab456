"""The playground's address: run a scenario's view as a visitor edited it (a plain form
POST, so it works without JavaScript), then show the run in the player."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from visualizer.limits import LimitReached, client_of_request, limits
from visualizer.playground.checks import Problem
from visualizer.playground.editor import editor_for
from visualizer.playground.forms import EditForm
from visualizer.playground.runs import EditedRun, PlaygroundOff, edited_runs, run_edited
from visualizer.scenarios.catalog import Scenario, get_scenario
from visualizer.scenarios.runs import RunRequest
from visualizer.traces.models import Trace
from visualizer.traces.pages import PageOptions, page_context


@require_POST
async def edited_run(request: ASGIRequest, slug: str) -> HttpResponse:
    """Check the edited code; run it in the playground's worker; store the trace with the
    code that ran and show it in the player. Problems are shown beside the code."""
    scenario = get_scenario(slug)
    if scenario is None:
        raise Http404("No such scenario.")
    form = EditForm(scenario, request.POST)
    if not form.is_valid():
        return await _page(request, scenario, form, status=400)
    run = RunRequest(*form.checked())
    client = client_of_request(request)
    try:
        limits().check_work(run.requests, run.params)
        edited_runs().acquire(client)
    except LimitReached as error:
        return await _page(request, scenario, form, stopped=f"Could not run: {error}", status=429)
    try:
        result = await run_edited(scenario, form.source(), run)
    except PlaygroundOff as error:
        return await _page(request, scenario, form, stopped=str(error), status=503)
    finally:
        edited_runs().release(client)
    if result.document is None:
        return await _page(request, scenario, form, result, status=200 if result.stopped else 400)
    document = result.document
    # A run a limit stopped is cut off; any other is complete, whatever its view did.
    status = Trace.Status.INTERRUPTED if result.partial else Trace.Status.COMPLETE
    await database_sync_to_async(Trace.store)(document, source=Trace.Source.RECORDED, status=status)
    url = reverse("scenario", args=[slug])
    return redirect(f"{url}?recording={document['id']}&step=1")


async def _page(
    request: HttpRequest,
    scenario: Scenario,
    form: EditForm,
    result: EditedRun | None = None,
    *,
    stopped: str = "",
    status: int,
) -> HttpResponse:
    problems: list[Problem] = result.problems if result else []
    stopped = stopped or (result.stopped if result else "")
    response: HttpResponse = await database_sync_to_async(_render)(
        request, scenario, form, problems, stopped, status
    )
    return response


def _render(
    request: HttpRequest,
    scenario: Scenario,
    form: EditForm,
    problems: list[Problem],
    stopped: str,
    status: int,
) -> HttpResponse:
    context = page_context(scenario, PageOptions(QueryDict()))
    context["editor"] = editor_for(scenario, form=form, problems=problems, stopped=stopped)
    return render(request, "traces/player.html", context, status=status)
