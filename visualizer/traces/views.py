"""The trace library's pages: the stored traces, a trace in the player, import, export,
rename and delete; and a recording's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from tracer.django_integration import get_tracer
from tracer.validation import TraceRejected
from visualizer.http import HtmxHttpRequest
from visualizer.limits import LimitReached, client_of_request, limits
from visualizer.scenarios.catalog import SCENARIOS, get_scenario
from visualizer.scenarios.subject import feed, is_subject, subject
from visualizer.traces.archive import archiver
from visualizer.traces.compare import compare
from visualizer.traces.library import (
    EXPORT_FORMATS,
    LISTED,
    STORED,
    compare_choices,
    export,
    import_document,
    listed_traces,
    trace_document,
)
from visualizer.traces.models import Trace
from visualizer.traces.pages import PageOptions, page_context
from visualizer.traces.replay import replay_file
from visualizer.traces.sources import find_source


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


@require_safe
def library(request: HttpRequest) -> HttpResponse:
    """Stored traces; its forms (import, rename) post back with a CSRF token."""
    return render(request, "traces/library.html", library_context(request.GET.get("scenario", "")))


def library_context(scenario_filter: str, **extra: object) -> dict[str, object]:
    traces = listed_traces()
    if scenario_filter:
        traces = traces.filter(scenario_slug=scenario_filter)
    return {
        "traces": traces[:LISTED],
        "compare_choices": compare_choices(),
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
    return render(
        request, "traces/library.html", library_context("", import_error=error), status=status
    )


@require_POST
def rename_trace(request: HttpRequest, recording_id: str) -> HttpResponse:
    trace = get_object_or_404(Trace, recording_id=recording_id)
    name = request.POST.get("name", "").strip()
    if not name or len(name) > 200:
        context = library_context(
            "", rename_error=(trace.recording_id, "A name needs 1 to 200 characters.")
        )
        return render(request, "traces/library.html", context, status=400)
    trace.rename(name)
    return redirect("library")


def delete_trace(request: HttpRequest, recording_id: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    trace = get_object_or_404(Trace, recording_id=recording_id)
    if request.method == "POST":
        trace.delete()
        return redirect("library")
    return render(request, "traces/delete_trace.html", {"trace": trace})


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
        return HttpResponse(render_to_string("traces/player.html#step_response", context, request))
    return render(request, "traces/player.html", context)


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
def replay_file_download(request: HttpRequest, recording_id: str) -> HttpResponse:
    """The recording as one HTML file that replays it from disk (visualizer/traces/replay.py)."""
    source = find_source(recording_id)
    if source is None:
        raise Http404("No such trace.")
    html = replay_file(get_scenario(source.scenario_slug), source)
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="trace-{recording_id}.html"'
    return response


@require_safe
def compare_traces(request: HttpRequest) -> HttpResponse:
    """Two stored recordings side by side (?a=ID&b=ID), or the form to pick them."""
    chosen = [request.GET.get("a", "").strip(), request.GET.get("b", "").strip()]
    context: dict[str, object] = {"compare_choices": _choices_keeping(chosen), "chosen": chosen}
    if not all(chosen):
        if any(chosen):
            unset, given = ("B", "A") if chosen[0] else ("A", "B")
            context["error"] = f"Choose recording {unset} too, to compare with {given}."
        return render(request, "traces/compare.html", context)
    if chosen[0] == chosen[1]:
        context["error"] = (
            f"A and B are the same recording ({chosen[0]!r}): choose two different ones."
        )
        return render(request, "traces/compare.html", context, status=400)
    documents = [trace_document(recording_id) for recording_id in chosen]
    missing = [rid for rid, d in zip(chosen, documents, strict=True) if d is None]
    if missing:
        names = " or ".join(repr(rid) for rid in missing)
        context["error"] = f"No recording {names} in the library: choose another."
        return render(request, "traces/compare.html", context, status=404)
    a, b = documents
    assert a is not None and b is not None
    context["comparison"] = compare(a, b)
    return render(request, "traces/compare.html", context)


@dataclass(frozen=True)
class _Choice:
    recording_id: str
    name: str


def _choices_keeping(chosen: list[str]) -> list[Trace | _Choice]:
    """The compare form's recordings, with any chosen one the list does not hold (older
    than those listed, or not in the library at all), so that the form keeps it."""
    choices: list[Trace | _Choice] = list(compare_choices())
    listed = {choice.recording_id for choice in choices}
    for recording_id in dict.fromkeys(rid for rid in chosen if rid and rid not in listed):
        trace = Trace.objects.filter(recording_id=recording_id).only("name").first()
        name = trace.name if trace else "not in the library"
        choices.append(_Choice(recording_id, name))
    return choices
