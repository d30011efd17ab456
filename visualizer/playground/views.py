"""The playground's address: run a scenario's view as a visitor edited it (a plain form
POST, so it works without JavaScript), then show the run in the player."""

from __future__ import annotations

import asyncio

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
from visualizer.playground.live import EditedRunMirror, run_streamed
from visualizer.playground.runs import EditedRun, PlaygroundOff, edited_runs
from visualizer.scenarios.catalog import Scenario, get_scenario
from visualizer.scenarios.runs import RunRequest, new_recording_id
from visualizer.traces.pages import PageOptions, page_context
from visualizer.traces.run_state import EDITED_PREFIX


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
    # With JavaScript the page follows the run as it goes (editor.js asks for it): it is
    # shown as soon as its first step is in, and the run goes on after this answer.
    mirror = None
    if request.POST.get("stream") == "1":
        mirror = EditedRunMirror(scenario, form.source(), run, new_recording_id(EDITED_PREFIX))
    task = asyncio.create_task(_run(scenario, form.source(), run, mirror, client))
    if mirror is not None:
        started = asyncio.create_task(mirror.started.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if not task.done():
            RUNS_GOING_ON.add(task)
            task.add_done_callback(RUNS_GOING_ON.discard)
            return redirect(_recording_url(slug, mirror.job["recording_id"], follow=True))
    try:
        result = await task
    except PlaygroundOff as error:
        return await _page(request, scenario, form, stopped=str(error), status=503)
    if result.document is None:
        return await _page(request, scenario, form, result, status=200 if result.stopped else 400)
    return redirect(_recording_url(slug, result.document["id"]))


# The runs whose page was answered before they were over (kept from the garbage collector).
RUNS_GOING_ON: set[asyncio.Task[EditedRun]] = set()


async def _run(
    scenario: Scenario,
    source: str,
    run: RunRequest,
    mirror: EditedRunMirror | None,
    client: str,
) -> EditedRun:
    try:
        return await run_streamed(scenario, source, run, mirror)
    finally:
        edited_runs().release(client)


def _recording_url(slug: str, recording_id: str, *, follow: bool = False) -> str:
    query = f"recording={recording_id}" + ("&follow=1" if follow else "&step=1")
    return f"{reverse('scenario', args=[slug])}?{query}"


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
