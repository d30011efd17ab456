from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_choice(choices: dict[str, Any], key: str) -> Any:
    """choices[key], for dictionaries keyed by a variable."""
    return choices.get(key, key)
