"""tracer/targets.py: what patterns name, and the code the instrumentation gets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.async_visualizer import sample_views
from tracer import instrumentation, targets

MODULE = "tests.async_visualizer.sample_views"


@pytest.fixture
def registry() -> Iterator[None]:
    """The process's registrations as they were before the test."""
    views, helpers = dict(instrumentation.REGISTRY), dict(instrumentation.HELPERS)
    resolvers = list(instrumentation.VIEW_RESOLVERS)
    yield
    instrumentation.REGISTRY.clear()
    instrumentation.REGISTRY.update(views)
    instrumentation.HELPERS.clear()
    instrumentation.HELPERS.update(helpers)
    instrumentation.VIEW_RESOLVERS[:] = resolvers


def by_name(found: list[targets.Target]) -> dict[str, targets.Target]:
    return {target.name.rpartition(".")[2]: target for target in found}


def test_it_takes_a_modules_views_and_leaves_its_helpers() -> None:
    found = by_name(targets.resolve([f"{MODULE}.*"], depth=0))
    assert set(found) == {"plain", "decorated", "hidden", "made", "Orders", "AsyncOrders"}


def test_it_unwraps_decorators_with_and_without_functools_wraps() -> None:
    found = by_name(targets.resolve([f"{MODULE}.decorated", f"{MODULE}.hidden"], depth=0))
    assert found["decorated"].entries[0].__code__.co_name == "decorated"
    assert found["hidden"].entries[0].__code__.co_name == "hidden"
    (made,) = targets.resolve([f"{MODULE}.made"], depth=0)
    assert made.entries[0].__code__.co_name == "made"  # not the helper it closes over
    # Never the decorator's shared wrapper code.
    assert all(e.__code__.co_name != "wrapper" for t in found.values() for e in t.entries)


def test_it_takes_each_class_based_views_own_handlers() -> None:
    (orders,) = targets.resolve([f"{MODULE}.Orders"], depth=0)
    assert [entry.__name__ for entry in orders.entries] == ["get", "post"]
    assert orders.view_class is sample_views.Orders
    (async_orders,) = targets.resolve([f"{MODULE}.AsyncOrders"], depth=0)
    assert [entry.__qualname__ for entry in async_orders.entries] == ["AsyncOrders.get"]


def test_it_finds_helpers_to_the_given_depth() -> None:
    names = {
        depth: sorted(
            code.co_name for code in targets.resolve([f"{MODULE}.plain"], depth)[0].helpers
        )
        for depth in (0, 1, 2)
    }
    assert names == {0: [], 1: ["total"], 2: ["rounded", "total"]}
    (orders,) = targets.resolve([f"{MODULE}.Orders"], depth=1)
    # The class's own dispatch, and the method its handler calls on self.
    assert sorted(code.co_name for code in orders.helpers) == ["count", "dispatch"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("shop views", "is not a view pattern"),
        ("nosuchmodule.*", "cannot import nosuchmodule"),
        (f"{MODULE}.missing", "has no missing"),
        (f"{MODULE}.MODULE_CONSTANT_THAT_IS_NOT_THERE", "has no"),
        ("plain", "name a module and a view"),
        ("tracer.procfs.*", "defines no views"),
        (f"{MODULE}.total", None),  # any function named on its own is taken
    ],
)
def test_it_names_the_bad_pattern(pattern: str, message: str | None) -> None:
    if message is None:
        assert targets.resolve([pattern])
        return
    with pytest.raises(targets.TargetError, match=message):
        targets.resolve([pattern])


def test_it_refuses_a_bad_depth() -> None:
    with pytest.raises(targets.TargetError, match="DEPTH must be a whole number from 0 to 5"):
        targets.resolve([f"{MODULE}.plain"], depth=9)


@pytest.mark.usefixtures("registry")
def test_it_finds_the_registered_function_behind_a_urls_view() -> None:
    targets.register(targets.resolve([f"{MODULE}.*"], depth=1))
    as_view = sample_views.Orders.as_view()
    assert instrumentation.traced_view_function(as_view) is sample_views.Orders.get
    assert instrumentation.traced_view_function(as_view, "POST") is sample_views.Orders.post
    assert instrumentation.traced_view_info(as_view) == {"view": f"{MODULE}.Orders"}
    assert instrumentation.traced_view_function(sample_views.decorated).__name__ == "decorated"
    assert instrumentation.traced_view_function(sample_views.hidden).__code__.co_name == "hidden"
    assert instrumentation.traced_view_info(sample_views.total) is None
    assert id(sample_views.total.__code__) in instrumentation.HELPERS
