"""The search page (/search/?q=&type=&project=&tag=&owner=&page=&sort=) and its htmx
fragments: the results block (live results as the user types) and the header box's
dropdown (`?dropdown=1`). Everything comes from catalog.search, which restricts to
what the user may DESCRIBE before matching or counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from catalog.search import FEATURE, SORTS, TYPE_FROM_PUBLIC, TYPE_LABELS, Hit, SearchParams, SearchResults, search

from .types import BY_RESOURCE_TYPE

PAGE_SIZE = 20
DROPDOWN_SIZE = 8
FACETS = (("type", "Type"), ("project", "Project"), ("tag", "Tags"), ("owner", "Owner"))


def params_from_request(query: QueryDict, limit: int = PAGE_SIZE) -> SearchParams:
    """SearchParams from the page's query string; unknown values are ignored, not errors."""
    types = tuple(t for t in (TYPE_FROM_PUBLIC.get(v.strip().lower()) for v in query.getlist("type")) if t)
    tags = []
    for raw in query.getlist("tag"):
        key, sep, value = raw.partition(":")
        if sep and key:
            tags.append((key, value))
    try:
        page = max(1, int(query.get("page") or 1))
    except ValueError:
        page = 1
    sort = query.get("sort") or "match_score"
    descending = sort.startswith("-") or sort == "match_score"
    sort_by = sort.lstrip("-")
    if sort_by not in SORTS:
        sort_by, descending = "match_score", True
    return SearchParams(
        query=query.get("q", ""),
        types=types,
        projects=tuple(p for p in query.getlist("project") if p),
        tags=tuple(tags),
        owner=query.get("owner", ""),
        page=page,
        limit=limit,
        sort_by=sort_by,
        descending=descending,
    )


def hit_url(hit: Hit) -> str:
    """The portal page of a search hit (empty when the pages do not know the type)."""
    try:
        if hit.type == FEATURE:
            if hit.parent_type == "feature_view":
                kwargs = {"project": hit.project, "view": hit.parent_name, "feature": hit.name}
                return reverse("catalog:feature-views-feature", kwargs=kwargs)
            kwargs = {"project": hit.project, "odfv": hit.parent_name, "feature": hit.name}
            return reverse("catalog:on-demand-feature-views-feature", kwargs=kwargs)
        page = BY_RESOURCE_TYPE[hit.type]
        return reverse(page.detail_url_name, kwargs={"project": hit.project, "name": hit.name})
    except (KeyError, NoReverseMatch):
        return ""


@dataclass
class FacetLink:
    label: str
    count: int
    url: str
    active: bool


def _with(query: QueryDict, name: str, value: str | None) -> str:
    """The query string with facet `name` set to `value` (None: removed), back to page 1."""
    q = query.copy()
    q.pop("page", None)
    q.pop("dropdown", None)
    if value is None:
        q.pop(name, None)
    else:
        q.setlist(name, [value])
    return "?" + q.urlencode()


def facet_links(query: QueryDict, results: SearchResults) -> list[tuple[str, str, list[FacetLink], str]]:
    """(name, label, links, clear-url) per facet; a link narrows to one value."""
    out = []
    for name, label in FACETS:
        active = set(query.getlist(name))
        links = [
            FacetLink(f.label or f.value, f.count, _with(query, name, f.value), f.value in active)
            for f in results.facets.get(name, [])
        ]
        out.append((name, label, links, _with(query, name, None) if active else ""))
    return out


def search_page(request: HttpRequest) -> HttpResponse:
    dropdown = request.GET.get("dropdown") == "1"
    params = params_from_request(request.GET, DROPDOWN_SIZE if dropdown else PAGE_SIZE)
    results = search(request.user, params) if (params.query_words or not dropdown) else None
    if results is not None:
        for hit in results.hits:
            hit.url = hit_url(hit)
    context: dict[str, Any] = {
        "params": params,
        "results": results,
        "query_words": params.query_words,
        "q": params.query,
        "type_labels": TYPE_LABELS,
    }
    if dropdown:
        return render(request, "catalog/partials/search_dropdown.html", context)
    context["facets"] = facet_links(request.GET, results)
    base = request.GET.copy()
    base.pop("page", None)
    context["page_query"] = base.urlencode()
    context["sorts"] = [
        ("match_score", "Best match"),
        ("name", "Name"),
        ("type", "Type"),
    ]
    if getattr(request, "htmx", False) and request.headers.get("HX-Target") == "search-results":
        return render(request, "catalog/partials/search_results.html", context)
    return render(request, "catalog/search.html", context)
