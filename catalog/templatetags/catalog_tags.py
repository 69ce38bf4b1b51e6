"""Template helpers of the portal: links to objects, sortable headers, durations."""

from datetime import timedelta
from typing import Any

from django import template
from django.http import QueryDict
from django.utils.html import format_html

from catalog.views.definition import format_ttl
from catalog.views.types import detail_url

register = template.Library()


@register.filter
def url_of(obj: Any, project_name: str = "") -> str:
    """The portal page of a registry object or feature (its project must be loaded)."""
    return detail_url(obj, project_name or None)


@register.filter
def ttl(value: timedelta | int | None) -> str:
    """A ttl as the feature repo writes it (`1d`, `90m`); 0 is "unlimited"."""
    seconds = int(value.total_seconds()) if isinstance(value, timedelta) else int(value or 0)
    return "unlimited" if not seconds else str(format_ttl(seconds))


@register.filter
def get(mapping: dict, key: Any) -> Any:
    return (mapping or {}).get(key)


@register.simple_tag(takes_context=True)
def sort_header(context: dict, label: str, key: str) -> str:
    """A table header: a link that sorts by `key` (again: reversed), keeping the filters,
    with aria-sort for screen readers. Columns without a key are plain text."""
    if not key:
        return format_html('<th scope="col">{}</th>', label)
    current = context.get("sort", "")
    ascending = current == key
    descending = current == f"-{key}"
    params: QueryDict = context["request"].GET.copy()
    params["sort"] = f"-{key}" if ascending else key
    params.pop("page", None)
    state = "ascending" if ascending else "descending" if descending else "none"
    arrow = " ▲" if ascending else " ▼" if descending else ""
    return format_html(
        '<th scope="col" aria-sort="{}"><a href="?{}" hx-get="?{}" hx-target="#results" hx-push-url="true" '
        'aria-label="Sort by {}">{}{}</a></th>',
        state,
        params.urlencode(),
        params.urlencode(),
        label.lower(),
        label,
        arrow,
    )


@register.simple_tag(takes_context=True)
def page_query(context: dict, page: int) -> str:
    """The current query string with another page number (filters and sort kept)."""
    params: QueryDict = context["request"].GET.copy()
    params["page"] = str(page)
    return "?" + params.urlencode()
