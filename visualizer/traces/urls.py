from __future__ import annotations

from django.urls import path

from visualizer.traces import views

urlpatterns = [
    path("recordings/<str:recording_id>.json", views.recording_json, name="recording-json"),
    path("traces/", views.library, name="library"),
    # Before the trace pattern, so that "import" is never read as a recording id.
    path("traces/import/", views.import_upload, name="trace-import"),
    path("traces/compare/", views.compare_traces, name="trace-compare"),
    path("traces/<str:recording_id>/", views.trace_player, name="trace-player"),
    path("traces/<str:recording_id>/rename/", views.rename_trace, name="trace-rename"),
    path("traces/<str:recording_id>/delete/", views.delete_trace, name="trace-delete"),
    path(
        "traces/<str:recording_id>/export.json",
        views.export_trace,
        {"export_format": "trace"},
        name="trace-export",
    ),
    path(
        "traces/<str:recording_id>/replay.html",
        views.replay_file_download,
        name="trace-replay-file",
    ),
    path(
        "traces/<str:recording_id>/export.chrome.json",
        views.export_trace,
        {"export_format": "chrome"},
        name="trace-export-chrome",
    ),
]
