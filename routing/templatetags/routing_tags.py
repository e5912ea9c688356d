from django import template

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.4567 -> "45.7%"; None (not computable: nothing to count) -> "—"."""
    if value is None or value == "":
        return "—"
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def number(value, digits: int = 3) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value):.{int(digits)}f}"
