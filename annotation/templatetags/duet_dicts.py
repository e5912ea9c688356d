"""`{% for key, value in mapping|entries %}`: a dict's items whatever its keys.

The template language reads `mapping.items` as a key lookup first, so a dict holding a key
named "items" (a judging job's counts do) hands the loop a number instead of its items and
the page fails. Every template that loops over a dict goes through this filter.
"""

from django import template

register = template.Library()


@register.filter
def entries(mapping) -> list:
    """The (key, value) pairs of a dict in its order; nothing for None."""
    if mapping is None:
        return []
    return list(mapping.items())
