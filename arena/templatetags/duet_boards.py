"""Filters for the leaderboard pages."""

from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.125 -> "12.5%"; "—" for None or a missing value (boards computed before the column)."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f}%"


@register.filter
def get(mapping, key):
    """A dict's value by a key held in a variable; None when absent."""
    return (mapping or {}).get(key)
