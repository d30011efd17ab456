from __future__ import annotations

from django.urls import path

from visualizer import practice_views

# Included under "practice/" by visualizer/urls.py. The summary comes before the questions'
# pattern so that "summary" is never read as a question's slug.
urlpatterns = [
    path("", practice_views.practice, name="practice"),
    path("summary/", practice_views.practice_summary, name="practice-summary"),
    path("<slug:slug>/", practice_views.practice_question, name="practice-question"),
]
