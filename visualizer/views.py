"""Pages and endpoints of the visualizer (the scenario views are in scenario_views.py)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from tracer.django_integration import get_tracer
from visualizer.pages import PageOptions, page_context
from visualizer.runs import RunFailed, RunRequest, own_base_url, record_run
from visualizer.scenarios import SCENARIOS, Scenario, get_scenario


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"scenarios": SCENARIOS.values()})


def _scenario_or_404(slug: str) -> Scenario:
    scenario = get_scenario(slug)
    if scenario is None:
        raise Http404("No such scenario.")
    return scenario


@require_GET
@csrf_protect
def scenario_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The player: a recording of the scenario at one step (?recording=…&step=N)."""
    scenario = _scenario_or_404(slug)
    options = PageOptions(request.GET)
    context = page_context(scenario, options)
    if request.htmx:
        return HttpResponse(render_to_string("scenario.html#step_response", context, request))
    return render(request, "scenario.html", context)


@require_POST
@csrf_protect
async def scenario_run(request: HttpRequest, slug: str) -> HttpResponse:
    """Run the scenario without JavaScript: record the run, then show its first step."""
    scenario = _scenario_or_404(slug)
    try:
        run = RunRequest.from_values(scenario, request.POST)
        document = await record_run(
            own_base_url(request.scope), scenario, requests=run.requests, params=run.params
        )
    except (ValueError, RunFailed) as error:
        return HttpResponse(f"Could not run: {error}", status=400, content_type="text/plain")
    return redirect(f"{reverse('scenario', args=[slug])}?recording={document['id']}&step=1")


@require_GET
def recording_json(request: HttpRequest, recording_id: str) -> JsonResponse:
    """The trace document of a recording this server process holds in memory."""
    recording = get_tracer().store.get(recording_id)
    if recording is None:
        raise Http404("No recording with that id in this server process.")
    return JsonResponse(recording.document())


def no_websocket(request: HttpRequest, slug: str) -> HttpResponse:
    """The WebSocket URL reached over plain HTTP."""
    return HttpResponse("This address takes WebSocket connections.", status=426)
