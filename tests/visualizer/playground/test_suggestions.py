"""Suggested edits without running them: each applies to its scenario's code and passes the
playground's checks; the scenario page offers them and, without JavaScript, opens with one's
code in the textarea (?suggestion=); an unknown one is said, not guessed."""

from __future__ import annotations

import html

import pytest

from visualizer.playground.checks import check_source
from visualizer.playground.editable import starting_code
from visualizer.playground.sandbox import LISTEN_ENV
from visualizer.playground.suggestions import (
    SUGGESTIONS,
    Suggestion,
    SuggestionDoesNotApply,
    suggested_code,
    suggestion_problem,
)
from visualizer.scenarios.catalog import SCENARIOS

EVERY_SUGGESTION = [
    (slug, suggestion.slug)
    for slug, suggestions in SUGGESTIONS.items()
    for suggestion in suggestions
]


@pytest.fixture
def playground_on(settings, monkeypatch):
    """The playground runs code here, so the panel shows its form (local mode: no
    bubblewrap needed to render a page)."""
    settings.PLAYGROUND = "local"
    monkeypatch.setenv(LISTEN_ENV, "127.0.0.1")


def textarea_of(page: str) -> str:
    inside = page.split('id="id_edit-source">', 1)[1].split("</textarea>", 1)[0]
    # Django writes a newline after the opening tag, which the browser drops.
    return html.unescape(inside).removeprefix("\n")


def test_every_scenario_offers_at_least_one_edit():
    assert set(SUGGESTIONS) == set(SCENARIOS)
    for suggestions in SUGGESTIONS.values():
        assert 1 <= len(suggestions) <= 2
        assert len({s.slug for s in suggestions}) == len(suggestions)


@pytest.mark.parametrize(("scenario", "suggestion"), EVERY_SUGGESTION)
def test_each_edit_changes_the_code_and_passes_the_checks(scenario, suggestion):
    code = suggested_code(SCENARIOS[scenario], suggestion)

    assert code != starting_code(SCENARIOS[scenario])
    assert check_source(code, SCENARIOS[scenario].view.__name__) == []


def test_an_edit_whose_text_is_not_there_once_does_not_apply():
    edit = Suggestion("x", "X", "Y", (("time.sleep(", "await asyncio.sleep("),))

    with pytest.raises(SuggestionDoesNotApply, match="is in the code 0 times, not once"):
        edit.apply("pass\n")
    with pytest.raises(SuggestionDoesNotApply, match="2 times"):
        edit.apply("time.sleep(1)\ntime.sleep(2)\n")
    assert edit.apply("time.sleep(1)\n") == "await asyncio.sleep(1)\n"


def test_an_unknown_suggestion_is_said_with_the_known_ones():
    assert suggestion_problem("async-sleep", "asyncio-sleep") is None
    assert suggestion_problem("async-sleep", "nope") == (
        "no suggested edit 'nope' for async-sleep (its edits: asyncio-sleep)"
    )
    assert suggestion_problem("no-such", "asyncio-sleep").startswith(
        "no scenario 'no-such' (known: async-io, sync-io,"
    )


@pytest.mark.django_db
def test_the_page_links_each_edit_and_carries_its_code_for_the_editor(client, playground_on):
    page = client.get("/scenarios/async-orm-sync/").content.decode()

    for suggestion in SUGGESTIONS["async-orm-sync"]:
        link = f'href="/scenarios/async-orm-sync/?suggestion={suggestion.slug}#edit"'
        assert link in page
        assert f'data-suggestion="{suggestion.slug}"' in page
        assert html.escape(suggestion.title) in page
    assert '<script id="edit-suggested-code" type="application/json">' in page
    # The scenario's own code in the editor, and no edit said to be loaded.
    assert textarea_of(page) == starting_code(SCENARIOS["async-orm-sync"])
    assert '<p id="suggestion-loaded" role="status"></p>' in page


@pytest.mark.django_db
def test_without_javascript_the_link_opens_the_page_with_the_edited_code(client, playground_on):
    page = client.get("/scenarios/async-cpu/", {"suggestion": "to-thread"}).content.decode()

    code = textarea_of(page)
    assert code == suggested_code(SCENARIOS["async-cpu"], "to-thread")
    assert "primes = await asyncio.to_thread(count_primes, limit)" in code
    [suggestion] = SUGGESTIONS["async-cpu"]
    assert html.escape(suggestion.loaded_text) in page
    assert f'data-suggestion="to-thread" data-loaded="{html.escape(suggestion.loaded_text)}"' in (
        page
    )
    assert "<details open>" in page.split('id="edit"', 1)[1]


@pytest.mark.django_db
def test_an_unknown_suggestion_in_the_address_is_said_and_the_code_kept(client, playground_on):
    answer = client.get("/scenarios/async-cpu/", {"suggestion": "<b>faster</b>"})

    page = answer.content.decode()
    assert answer.status_code == 200
    assert textarea_of(page) == starting_code(SCENARIOS["async-cpu"])
    assert (
        "Not loaded: no suggested edit &#x27;&lt;b&gt;faster&lt;/b&gt;&#x27; for async-cpu "
        "(its edits: to-thread). The code below is not changed."
    ) in page
    assert "<b>faster</b>" not in page
