"""What to trace in a project, from patterns such as ``shop.views.*`` or ``shop.views.OrderView``.

A pattern names a module's views (``module.*``: its classes and the functions whose first
parameter is ``request``) or one view (``module.name``). The code that
runs for each view is found and registered with the instrumentation:

- a function view: its own function, unwrapped from its decorators (``__wrapped__``, or a
  decorator's closure holding a function of the view's module);
- a class-based view: each HTTP handler method (``get``, ``post``, ...) the class defines or
  inherits from a class of the project, each class on its own; a ``dispatch`` of the
  project's is a helper. (Django's ``as_view()`` closure is shared by every class-based
  view, so its code object cannot tell them apart.) An async handler is a coroutine, so its
  awaits are recorded like an ``async def`` function view's;
- a django-ninja operation function (``@api.get(...)``): a function view like the others.

Helpers, to a depth: the functions a traced function names (globals of its module, and on a
class-based view the methods it reads from ``self``) that are defined in the view's own
top-level package, then the functions those name, and so on, ``depth`` levels down. Names
are resolved once, when the targets are resolved, not by following calls at run time: it
costs nothing per request, and it misses only code reached in ways a name does not show
(a function passed in as an argument, for example).

Plain Python: nothing here imports Django; a class-based view is anything with ``as_view``
and ``http_method_names``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import CodeType, FunctionType
from typing import Any

from tracer.instrumentation import VIEW_RESOLVERS, register_helper, register_view

PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?")
MAX_DEPTH = 5
# Django's View.http_method_names, without options (Django answers it itself).
HANDLER_NAMES = ("get", "post", "put", "patch", "delete", "head", "trace")


class TargetError(ValueError):
    """A pattern that is malformed or names nothing that can be traced."""


@dataclass
class Target:
    """One traced view: its dotted name, the functions that run as the view, and the code
    objects of its helpers."""

    name: str
    entries: list[FunctionType]
    view_class: type | None = None
    helpers: list[CodeType] = field(default_factory=list)


def resolve(patterns: Iterable[str], depth: int = 1) -> list[Target]:
    """The views ``patterns`` name, with their helpers ``depth`` calls down. Raises
    TargetError, naming the pattern, for one that is malformed or names nothing."""
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_DEPTH:
        raise TargetError(f"DEPTH must be a whole number from 0 to {MAX_DEPTH}, not {depth!r}")
    targets: dict[str, Target] = {}
    for pattern in patterns:
        for target in _resolve_pattern(pattern):
            targets.setdefault(target.name, target)
    found = list(targets.values())
    add_helpers(found, depth)
    return found


def add_helpers(targets: list[Target], depth: int) -> None:
    """Find each target's helpers, ``depth`` calls down. A function that is a view itself
    stays a view when another view calls it: the instrumentation takes the first view code
    to start in a request as its view."""
    entries = {id(entry.__code__) for target in targets for entry in target.entries}
    for target in targets:
        target.helpers = [code for code in _helpers(target, depth) if id(code) not in entries]


def register(targets: Iterable[Target]) -> None:
    """Register every target's entries as views and its helpers as helpers, and let the
    instrumentation find a class's or a decorated view's function behind a URL's view."""
    for target in targets:
        for entry in target.entries:
            register_view(entry, view=target.name)
        for code in target.helpers:
            register_helper(code)
        if target.view_class is not None:
            _CLASS_ENTRIES[target.view_class] = target.entries
    if _function_behind not in VIEW_RESOLVERS:
        VIEW_RESOLVERS.append(_function_behind)


# A traced class-based view's entries, by class (what a URL's as_view() closure names).
_CLASS_ENTRIES: dict[type, list[FunctionType]] = {}


def _function_behind(view: Any, method: str | None) -> Callable[..., Any] | None:
    """The function that runs for the URL's view ``view`` for a request of ``method`` (None:
    any): a class-based view's handler, a decorated view's function, a django-ninja path's
    operation.

    Called for every thread hop of a traced request, so it is quick, and it reads nothing
    but a plain function's own attributes and closure (never an object's attribute, which
    could run that object's code: a lazy object evaluating itself)."""
    if type(view) is not FunctionType:
        return None
    attributes = view.__dict__
    view_class = attributes.get("view_class")
    if view_class is not None:
        entries = _CLASS_ENTRIES.get(view_class)
        if not entries:
            return None
        handler = method.lower() if method else None
        return next((entry for entry in entries if entry.__name__ == handler), entries[0])
    if "__wrapped__" in attributes or view.__closure__:
        function = unwrap(view)
        if function is not view:
            return function  # type: ignore[no-any-return]
    for contents in _cell_contents(view):
        # django-ninja's PathView, which its URL view closes over.
        if type(contents).__module__.partition(".")[0] != "ninja":
            continue
        for operation in getattr(contents, "operations", None) or ():
            found = getattr(operation, "view_func", None)
            if isinstance(found, FunctionType) and (
                method is None or method in getattr(operation, "methods", ())
            ):
                return found
    return None


def unwrap(function: Any) -> Any:
    """The function a decorated function runs: ``__wrapped__`` followed to its end, then,
    for a decorator that did not use functools.wraps, the one function its wrapper's
    closure holds, when both take the same first parameter (a wrapper holding several, or
    a view closing over a helper, is left as it is)."""
    if type(function) is FunctionType and "__wrapped__" in function.__dict__:
        try:
            function = inspect.unwrap(function)
        except ValueError:  # a __wrapped__ cycle
            return function
    seen = {id(function)}
    while type(function) is FunctionType and function.__closure__:
        inner = [item for item in _cell_contents(function) if type(item) is FunctionType]
        if len(inner) != 1 or id(inner[0]) in seen or not _same_first_parameter(function, inner[0]):
            break
        function = inner[0]
        seen.add(id(function))
    return function


def _same_first_parameter(wrapper: FunctionType, inner: FunctionType) -> bool:
    """Whether both take the same first parameter (``request``): a wrapper passing its
    view's arguments on, not a view that calls a helper it closes over."""
    outer_code, inner_code = wrapper.__code__, inner.__code__
    return (
        outer_code.co_argcount > 0
        and inner_code.co_argcount > 0
        and outer_code.co_varnames[0] == inner_code.co_varnames[0]
    )


def _cell_contents(function: FunctionType) -> list[object]:
    found = []
    for cell in function.__closure__ or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return found


def _resolve_pattern(pattern: object) -> list[Target]:
    if not isinstance(pattern, str) or not PATTERN.fullmatch(pattern):
        raise TargetError(
            f"{pattern!r} is not a view pattern: write a dotted path such as "
            "'shop.views.OrderView' or 'shop.views.*'"
        )
    if pattern.endswith(".*"):
        module_name = pattern[:-2]
        module = _import(pattern, module_name)
        found = [
            target
            for name, value in sorted(vars(module).items())
            if not name.startswith("_")
            and getattr(value, "__module__", None) == module_name
            and _looks_like_a_view(value)
            and (target := target_of(f"{module_name}.{name}", value)) is not None
        ]
        if not found:
            raise TargetError(f"{pattern!r}: module {module_name} defines no views")
        return found
    module_name, _, attribute = pattern.rpartition(".")
    if not module_name:
        raise TargetError(f"{pattern!r}: name a module and a view in it, e.g. 'shop.views.home'")
    module = _import(pattern, module_name)
    value = getattr(module, attribute, None)
    if value is None:
        raise TargetError(f"{pattern!r}: module {module_name} has no {attribute}")
    target = target_of(pattern, value)
    if target is None:
        raise TargetError(f"{pattern!r} is neither a function nor a class-based view")
    return [target]


def _looks_like_a_view(value: object) -> bool:
    """Whether a module's ``*`` takes ``value``: a class, or a function whose first
    parameter is ``request`` (a module's other functions are its views' helpers)."""
    if isinstance(value, type):
        return True
    function = unwrap(value)
    if not isinstance(function, FunctionType):
        return False
    code = function.__code__
    return code.co_argcount > 0 and code.co_varnames[0] == "request"


def _import(pattern: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise TargetError(f"{pattern!r}: cannot import {module_name} ({error})") from None


def target_of(name: str, value: object) -> Target | None:
    """The target for ``value`` (a view function or class) named ``name``, or None if it is
    neither (its helpers are found by add_helpers)."""
    if isinstance(value, type):
        if not (hasattr(value, "as_view") and hasattr(value, "http_method_names")):
            return None
        entries = [
            handler
            for handler_name in HANDLER_NAMES
            if handler_name in value.http_method_names
            and (handler := _project_method(value, handler_name)) is not None
        ]
        return Target(name, entries, view_class=value) if entries else None
    function = unwrap(value)
    if isinstance(function, FunctionType):
        return Target(name, [function])
    return None


def _project_method(cls: type, name: str) -> FunctionType | None:
    """``cls``'s method ``name`` if a class of the view's own package defines it (not
    Django's generic views)."""
    package = cls.__module__.partition(".")[0]
    for klass in cls.__mro__:
        if name in vars(klass):
            method = unwrap(vars(klass)[name])
            if isinstance(method, FunctionType) and method.__module__.partition(".")[0] == package:
                return method
            return None
    return None


def _helpers(target: Target, depth: int) -> list[CodeType]:
    """The code of the functions the target's entries name, ``depth`` levels down, that
    belong to the view's own top-level package."""
    package = target.name.partition(".")[0]
    entries = {id(entry.__code__) for entry in target.entries}
    seen: dict[int, CodeType] = {}
    level: list[FunctionType] = list(target.entries)
    dispatch = _project_method(target.view_class, "dispatch") if target.view_class else None
    if dispatch is not None:
        seen[id(dispatch.__code__)] = dispatch.__code__
        level.append(dispatch)
    for _ in range(depth):
        next_level: list[FunctionType] = []
        for function in level:
            for called in _named_functions(function, target.view_class):
                code = called.__code__
                if called.__module__.partition(".")[0] != package:
                    continue
                if id(code) in entries or id(code) in seen:
                    continue
                seen[id(code)] = code
                next_level.append(called)
        level = next_level
    return list(seen.values())


def _named_functions(function: FunctionType, view_class: type | None) -> list[FunctionType]:
    """The functions ``function``'s code names: its module's globals, and methods of its
    view class read as attributes (``self.total()``), unwrapped."""
    found = []
    for name in _names(function.__code__):
        for value in (
            function.__globals__.get(name),
            getattr(view_class, name, None) if view_class is not None else None,
        ):
            value = unwrap(value) if value is not None else None
            if isinstance(value, FunctionType):
                found.append(value)
    return found


def _names(code: CodeType) -> list[str]:
    """Global and attribute names ``code`` and the functions nested in it use."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names += _names(const)
    return names
