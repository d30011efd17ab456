from __future__ import annotations

from django.urls import include, path

from visualizer import class_views, learning_views, views
from visualizer.scenarios import SCENARIOS

# A parameter a view refuses is explained, not a bare "Bad Request (400)" page.
handler400 = views.bad_request

urlpatterns = [
    path("", views.home, name="home"),
    path("scenarios/<slug:slug>/", views.scenario_page, name="scenario"),
    path("scenarios/<slug:slug>/run/", views.scenario_run, name="scenario-run"),
    # Where the page's WebSocket connects (served by Channels, see routing.py).
    path("ws/scenarios/<slug:slug>/", views.no_websocket, name="scenario-socket"),
    path("recordings/<str:recording_id>.json", views.recording_json, name="recording-json"),
    path("lab/", views.lab, name="lab"),
    path("lab/run/", views.lab_run, name="lab-run"),
    path("lab/runs/<str:recording_id>/", views.lab_progress, name="lab-progress"),
    path("traces/", views.library, name="library"),
    path("practice/", include("visualizer.practice_urls")),
    path("class/start/", class_views.class_start, name="class-start"),
    path("class/<str:code>/", class_views.class_follow, name="class-follow"),
    path("class/<str:code>/card/", class_views.class_card, name="class-card"),
    path("class/<str:code>/end/", class_views.class_end, name="class-end"),
    path("join/", class_views.join_class, name="join"),
    path("traces/import/", views.import_upload, name="trace-import"),
    path("traces/<str:recording_id>/", views.trace_player, name="trace-player"),
    path("traces/<str:recording_id>/quiz/", learning_views.trace_quiz, name="trace-quiz"),
    path(
        "traces/<str:recording_id>/transcript/",
        learning_views.trace_transcript,
        name="trace-transcript",
    ),
    path(
        "traces/<str:recording_id>/transcript.md",
        learning_views.trace_transcript,
        {"markdown": True},
        name="trace-transcript-md",
    ),
    path("traces/<str:recording_id>/rename/", views.rename_trace, name="trace-rename"),
    path("traces/<str:recording_id>/delete/", views.delete_trace, name="trace-delete"),
    path(
        "traces/<str:recording_id>/export.json",
        views.export_trace,
        {"export_format": "trace"},
        name="trace-export",
    ),
    path(
        "traces/<str:recording_id>/export.chrome.json",
        views.export_trace,
        {"export_format": "chrome"},
        name="trace-export-chrome",
    ),
    # Each scenario's real view runs in the subject process (visualizer/subject.py); here
    # its address passes requests on to it.
    *(
        path(f"run/{slug}/", views.run_in_subject, {"slug": slug}, name=f"run-{slug}")
        for slug in SCENARIOS
    ),
]
