"""The code a visitor starts editing from: a scenario's view and the helpers shown with it,
as one module, with the imports it needs taken from the scenario views' own module."""

from __future__ import annotations

import ast
import builtins
import functools
import inspect

from visualizer.scenarios import scenario_views
from visualizer.scenarios.catalog import Scenario

VIEWS_MODULE = scenario_views.__name__


@functools.cache
def starting_code(scenario: Scenario) -> str:
    """The module: the imports of what the view and its helpers use, then their code as
    the scenario page shows it. Names of the scenario views' module that are not shown
    (reading the request's parameters, the HTTP client) are imported from it."""
    body = scenario.source()
    # asyncio whether the view uses it or not: most edits the lesson suggests need it.
    used = _free_names(ast.parse(body)) | {"asyncio"}
    module_tree = ast.parse(inspect.getsource(scenario_views))
    lines: list[str] = []
    imported: set[str] = set()
    for node in module_tree.body:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        aliases = [alias for alias in node.names if _bound_name(alias) in used]
        if aliases:
            node.names = aliases
            lines.append(ast.unparse(node))
            imported.update(_bound_name(alias) for alias in aliases)
    from_views = sorted(name for name in used - imported if hasattr(scenario_views, name))
    if from_views:
        lines.append(f"from {VIEWS_MODULE} import {', '.join(from_views)}")
    return "\n".join(lines) + "\n\n\n" + body + "\n"


def _bound_name(alias: ast.alias) -> str:
    """The name an import binds: ``import urllib.request`` binds ``urllib``."""
    return alias.asname or alias.name.split(".")[0]


def _free_names(tree: ast.Module) -> set[str]:
    """Names the code reads that it does not define itself (nor Python's builtins)."""
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assigned = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    arguments = {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
    read = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return read - defined - assigned - arguments - set(dir(builtins))
