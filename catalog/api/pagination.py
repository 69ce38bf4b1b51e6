"""List query parameters of Feast's REST registry: `page` (from 1), `limit` (1..100,
default 50), `sort_by`, `sort_order` (asc|desc), and `tags=key:value` (repeatable,
all must match). Bad values answer 422 naming the parameter, as Feast's FastAPI does."""

from dataclasses import dataclass
from math import ceil
from typing import Any

from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import QueryDict

from access.api_errors import RequestValidationError, error_item

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


@dataclass(frozen=True)
class ListParams:
    page: int = 1
    limit: int = DEFAULT_LIMIT
    sort_by: str = ""  # a model field (already mapped from the public name), or "" for the default order
    descending: bool = False
    tags: tuple[tuple[str, str], ...] = ()


def _int_param(query: QueryDict, name: str, default: int, low: int, high: int | None, errors: list) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(error_item(["query", name], f"{name} must be an integer, got {raw!r}", "int_parsing"))
        return default
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        errors.append(error_item(["query", name], f"{name} must be {bounds}, got {value}"))
        return default
    return value


def parse_list_params(query: QueryDict, sorts: dict[str, str]) -> ListParams:
    """Read and check the list parameters; every problem is reported at once."""
    errors: list[dict[str, Any]] = []
    page = _int_param(query, "page", 1, 1, None, errors)
    limit = _int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, errors)
    sort_by = query.get("sort_by") or ""
    if sort_by and sort_by not in sorts:
        errors.append(error_item(["query", "sort_by"], f"sort_by must be one of {', '.join(sorts)}, got {sort_by!r}"))
    order = (query.get("sort_order") or "asc").lower()
    if order not in ("asc", "desc"):
        errors.append(error_item(["query", "sort_order"], f"sort_order must be asc or desc, got {order!r}"))
    tags = []
    for raw in query.getlist("tags"):
        key, sep, value = raw.partition(":")
        if not sep or not key:
            errors.append(error_item(["query", "tags"], f"tags must look like key:value, got {raw!r}"))
            continue
        tags.append((key, value))
    if errors:
        raise RequestValidationError(errors)
    return ListParams(page, limit, sorts.get(sort_by, ""), order == "desc", tuple(tags))


def filter_tags(queryset: QuerySet, tags: tuple[tuple[str, str], ...]) -> QuerySet:
    """Objects whose `tags` hold every key:value pair. Keys are compared as JSON keys,
    never as ORM lookups, so `a__b` in a tag name cannot turn into a join. The cast
    keeps the comparison textual (a bare key transform compares JSON documents)."""
    for index, (key, value) in enumerate(tags):
        alias = f"_tag_{index}"
        queryset = queryset.alias(**{alias: Cast(KeyTextTransform(key, "tags"), TextField())}).filter(**{alias: value})
    return queryset


def paginate(queryset: QuerySet, params: ListParams) -> tuple[list, dict[str, Any]]:
    """One page of `queryset` (tag-filtered and ordered) and Feast's pagination object."""
    queryset = filter_tags(queryset, params.tags)
    if params.sort_by:
        prefix = "-" if params.descending else ""
        queryset = queryset.order_by(f"{prefix}{params.sort_by}", f"{prefix}pk")
    total = queryset.count()
    start = (params.page - 1) * params.limit
    items = list(queryset[start : start + params.limit]) if start < total else []
    return items, {
        "page": params.page,
        "limit": params.limit,
        "totalCount": total,
        "totalPages": ceil(total / params.limit),
        "hasNext": start + params.limit < total,
        "hasPrevious": params.page > 1,
    }
