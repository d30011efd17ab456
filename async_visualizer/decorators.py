"""``@trace``: name a view to trace in its own module, instead of in settings."""

from __future__ import annotations

from tracer import targets

# Views named by @trace; their helpers are found when trace_asgi() runs, once every name
# of their modules is defined.
DECORATED: list[targets.Target] = []


def trace[View](view: View) -> View:
    """Trace ``view`` (a function view, decorated or not, or a class-based view) when
    ASYNC_VISUALIZER["ENABLED"] is True. Returns it unchanged: Django calls it as before."""
    name = f"{getattr(view, '__module__', '?')}.{getattr(view, '__qualname__', '?')}"
    target = targets.target_of(name, view)
    if target is None:
        raise TypeError(f"@trace: {name} is neither a function nor a class-based view")
    targets.register([target])
    DECORATED.append(target)
    return view
