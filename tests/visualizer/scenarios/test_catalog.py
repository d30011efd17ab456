"""The scenario table is read from scenarios.toml; a bad entry is refused with a message that
names the file, the scenario and the field."""

from __future__ import annotations

import pytest

from visualizer.scenarios import scenario_views
from visualizer.scenarios.catalog import SCENARIOS, TABLE, CatalogError, load_scenarios

GOOD = """
[[scenario]]
slug = "async-io"
title = "Async view awaiting I/O"
summary = \"\"\"
An async def view awaits
a slow call.\"\"\"
view = "async_io"
helpers = ["fetch_data"]
parameters = ["delay_ms"]
keep = ["One.", "Two."]
"""


def test_the_bundled_table_names_real_views_in_order():
    assert list(SCENARIOS)[:3] == ["async-io", "sync-io", "async-cpu"]
    assert SCENARIOS["async-io"].view is scenario_views.async_io
    assert SCENARIOS["sync-io"].helpers == (scenario_views.fetch_data_blocking,)
    assert all(scenario.keep for scenario in SCENARIOS.values())


def test_a_good_entry_is_read_with_its_texts_folded():
    (scenario,) = load_scenarios(GOOD).values()
    assert scenario.summary == "An async def view awaits a slow call."
    assert scenario.view is scenario_views.async_io
    assert scenario.helpers == (scenario_views.fetch_data,)
    assert (scenario.parameters, scenario.keep) == (("delay_ms",), ("One.", "Two."))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('view = "async_io"', 'view = "os_system"'), "scenario 'async-io': view: 'os_system' is"),
        (('view = "async_io"', 'view = "JsonResponse"'), "view: 'JsonResponse' is not a function"),
        (('helpers = ["fetch_data"]', 'helpers = ["nope"]'), "helpers[0]: 'nope' is not"),
        (('slug = "async-io"', 'slug = "Async IO"'), "slug: lower-case letters"),
        (('title = "Async view awaiting I/O"\n', ""), "scenario 'async-io': title: missing"),
        (('keep = ["One.", "Two."]', 'keep = ["One.", 2]'), "keep[1]: must be a non-empty string"),
        (('keep = ["One.", "Two."]', 'keep = ["One."]\nkeeps = []'), "keeps: not a field"),
        (("[[scenario]]", "[[scenarios]]"), "must hold [[scenario]] tables"),
        (('title = "Async', "title = Async"), "not valid TOML"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_and_field(change, message):
    with pytest.raises(CatalogError) as refused:
        load_scenarios(GOOD.replace(*change, 1))
    assert str(refused.value).startswith(TABLE.name)
    assert message in str(refused.value)


def test_a_slug_used_twice_is_refused():
    with pytest.raises(CatalogError, match="scenario 2: slug: 'async-io' is already used"):
        load_scenarios(GOOD + GOOD)
