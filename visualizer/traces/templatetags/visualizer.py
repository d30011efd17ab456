from __future__ import annotations

from typing import Any

from django import template
from django.template.context import Context
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString

from visualizer.traces.steps import Step

register = template.Library()


@register.filter
def get_choice(choices: dict[str, Any], key: str) -> Any:
    """choices[key], for dictionaries keyed by a variable."""
    return choices.get(key, key)


# One row of the execution table (templates/traces/player.html): every value escaped.
ROW = (
    '\n<tr id="step-{}" data-recording="{}" data-t-ns="{}"\n    {}>\n'
    '  <th scope="row"><a href="{}step={}">{}</a></th>\n'
    "  <td>{}</td>\n  <td>{}</td>\n  <td>{}</td>\n  <td>{}</td>\n"
    '  <td class="num">{}</td>\n  <td class="num">{}</td>\n</tr>\n'
)
CURRENT = SafeString('aria-current="step"')


@register.simple_tag(takes_context=True)
def execution_rows(context: Context, rows: list[Step]) -> SafeString:
    """The execution table's rows, for the page, its htmx swaps and the live stream alike.
    Built here rather than by a template loop: a step's page shows a hundred rows of a
    dozen values, which as template nodes took most of the page's render time. Reads
    ``page_url``, ``link_query``, ``recording_id`` and ``current_index`` (the row marked
    as the current step) from the context."""
    # Escaped once for all the rows (format_html leaves what is escaped as it is).
    step_url = escape(f"{context.get('page_url', '')}?{context.get('link_query', '')}")
    recording_id = escape(context.get("recording_id", ""))
    current_index = context.get("current_index")
    return SafeString(
        "".join(
            format_html(
                ROW,
                number := escape(step.number),
                recording_id,
                step.event["t_ns"],
                CURRENT if step.number == current_index else "",
                step_url,
                number,
                number,
                step.request or "",
                step.action,
                step.awaited,
                step.blocking,
                step.run_time,
                step.request_time,
            )
            for step in rows
        )
    )
