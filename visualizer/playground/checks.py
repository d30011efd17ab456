"""Check an edited view before anything of it runs: its size, its syntax (``compile()``,
which parses and compiles but runs nothing), the modules it imports (an allow-list), and
that it defines the view. A problem is reported with its line.

Runs in the web server: nothing here executes the visitor's code. The allow-list keeps the
edits to what the lesson is about and says so early; it is not what keeps the server safe
(code can reach other modules without an import statement): the sandbox is
(visualizer/playground/sandbox.py).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

MAX_SOURCE_BYTES = 64 * 1024

# The modules an edited view may import, and their submodules.
ALLOWED_MODULES = (
    "__future__",
    "asyncio",
    "time",
    "json",
    "math",
    "random",
    "statistics",
    "itertools",
    "functools",
    "collections",
    "dataclasses",
    "typing",
    "datetime",
    "decimal",
    "fractions",
    "re",
    "string",
    "textwrap",
    "operator",
    "contextlib",
    "concurrent.futures",
    "threading",
    "queue",
    "pathlib",
    "httpx",
    "urllib.request",
    "urllib.parse",
    "asgiref.sync",
    "django.http",
    "django.core.exceptions",
    "django.db",
    "django.conf",
    "visualizer.scenarios.scenario_views",
    "visualizer.scenarios.models",
    "visualizer.scenarios.upstream",
)


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line else self.message


def is_allowed(module: str) -> bool:
    return any(module == allowed or module.startswith(f"{allowed}.") for allowed in ALLOWED_MODULES)


def check_source(source: str, view_name: str) -> list[Problem]:
    """Every problem found in ``source``, a module that must define ``view_name``; empty
    when it may run."""
    size = len(source.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        return [Problem(None, f"The code is {size:,} bytes; at most {MAX_SOURCE_BYTES:,}.")]
    try:
        tree = ast.parse(source, filename="edited_view.py")
        compile(tree, "edited_view.py", "exec", dont_inherit=True)
    except SyntaxError as error:
        return [Problem(error.lineno, f"{error.msg}{_column(error)}")]
    except (ValueError, RecursionError, MemoryError) as error:
        # A null byte; nesting too deep for the parser.
        return [Problem(None, f"The code cannot be compiled: {type(error).__name__}: {error}")]
    problems = _refused_imports(tree)
    if not any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == view_name
        for node in tree.body
    ):
        problems.append(Problem(None, f"The code must define the view function {view_name}."))
    return problems


def _column(error: SyntaxError) -> str:
    return f" (column {error.offset})" if error.offset else ""


def _refused_imports(tree: ast.Module) -> list[Problem]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(Problem(node.lineno, "Relative imports are not allowed."))
                continue
            module = node.module or ""
            # "from urllib import request" imports urllib.request, which is allowed.
            allowed = is_allowed(module) or all(
                is_allowed(f"{module}.{alias.name}") for alias in node.names
            )
            modules = [] if allowed else [module]
        else:
            continue
        for module in modules:
            if not is_allowed(module):
                problems.append(
                    Problem(
                        node.lineno,
                        f"import of {module} is not allowed here (the modules the "
                        "playground allows are listed below the editor).",
                    )
                )
    return problems


def allowed_list() -> str:
    return ", ".join(module for module in ALLOWED_MODULES if module != "__future__")
