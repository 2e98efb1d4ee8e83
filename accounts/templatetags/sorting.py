from django import template

from accounts.html import format_html

register = template.Library()

ARROWS = {"ascending": "▲", "descending": "▼"}


@register.simple_tag
def sort_header(sort, key: str, label: str, css: str = ""):
    """``{% sort_header sort "joined" "Joined" "num" %}``: a column header that sorts the table by ``key``
    (``sort`` is an ``accounts.sorting.SortOrder``), with ``aria-sort`` and an arrow on the current column."""
    direction = sort.direction(key)
    first = "descending" if sort.sorting.columns[key].descending_first else "ascending"
    next_direction = {"ascending": "descending", "descending": "ascending"}.get(direction, first)
    return format_html(
        '<th scope="col"{}{}><a href="?{}" title="Sort by {} ({})">{}{}</a></th>',
        format_html(' class="{}"', css) if css else "",
        format_html(' aria-sort="{}"', direction) if direction else "",
        sort.query_for(key), label.lower(), next_direction, label,
        format_html(' <span class="sort-arrow" aria-hidden="true">{}</span>', ARROWS[direction]) if direction else "",
    )
