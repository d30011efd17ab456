from __future__ import annotations

from django.urls import path

from visualizer.learning import practice_views, views

# The practice summary comes before the questions' pattern so that "summary" is never read
# as a question's slug.
urlpatterns = [
    path("practice/", practice_views.practice, name="practice"),
    path("practice/summary/", practice_views.practice_summary, name="practice-summary"),
    path("practice/<slug:slug>/", practice_views.practice_question, name="practice-question"),
    path("traces/<str:recording_id>/quiz/", views.trace_quiz, name="trace-quiz"),
    path(
        "traces/<str:recording_id>/transcript/",
        views.trace_transcript,
        name="trace-transcript",
    ),
    path(
        "traces/<str:recording_id>/transcript.md",
        views.trace_transcript,
        {"markdown": True},
        name="trace-transcript-md",
    ),
]
