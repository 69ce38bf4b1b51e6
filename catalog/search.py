"""One search over every registry object and every feature (issue 7, item 2).

`search(user, params)` is the single entry point of the search page, its htmx
results and `/api/v1/search`. What it promises:

- Only objects the user may DESCRIBE take part: the candidate set is narrowed with
  `access.policy.restrict` before anything is matched, ranked or counted, so the
  facet counts and totals reveal nothing hidden. A feature is visible when its view is.
- Ranking puts name matches over description matches over tag matches (the tiers
  below), then close-but-misspelt names; equal scores fall back to type and name.
- Facets (type, project, owner, tags) count the matches after every filter.

Two backends answer the same question: on PostgreSQL one indexed query over
catalog.SearchDocument (full-text with A/B/C weights + pg_trgm similarity,
catalog.search_postgres); elsewhere the registry tables are read directly and ranked
here in Python, with difflib for typos (catalog.search_fallback).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from math import ceil
from typing import Any

from django.db import connection

FEATURE = "feature"
# Types in the order equal-score results are shown, with their labels.
TYPE_LABELS: dict[str, str] = {
    "feature_view": "feature view",
    FEATURE: "feature",
    "on_demand_feature_view": "on-demand view",
    "feature_service": "feature service",
    "entity": "entity",
    "data_source": "data source",
    "saved_dataset": "saved dataset",
    "permission": "permission",
}
TYPE_ORDER = {t: i for i, t in enumerate(TYPE_LABELS)}
# Feast's REST names of the types (its search results' "type").
FEAST_TYPES: dict[str, str] = {
    "feature_view": "featureView",
    FEATURE: "feature",
    "on_demand_feature_view": "onDemandFeatureView",
    "feature_service": "featureService",
    "entity": "entity",
    "data_source": "dataSource",
    "saved_dataset": "savedDataset",
    "permission": "permission",
}
TYPE_FROM_PUBLIC = {**{v.lower(): k for k, v in FEAST_TYPES.items()}, **{k: k for k in FEAST_TYPES}}

# Match tiers: a name beats a description beats tags; misspelt names rank last.
NAME_EXACT = 100
NAME_PREFIX = 95
NAME_CONTAINS = 90
NAME_WORDS = 85
DESCRIPTION = 80
MIXED = 70  # every word found, spread over name, description and tags
TAGS = 60
FUZZY_MAX = 59  # similarity x this, for names close to the query

MAX_QUERY = 200
SORTS = ("match_score", "name", "type")

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")


def words(text: str) -> list[str]:
    """Lower-case words of a text the way the index splits them: camelCase and any
    non-alphanumeric character separate words (`driverHourly_stats` -> driver hourly stats)."""
    return [w for w in _SEPARATORS.split(_CAMEL.sub(r"\1 \2", text or "").lower()) if w]


@dataclass(frozen=True)
class SearchParams:
    """What was asked. `types` are resource types (or "feature"); `tags` key/value pairs, all required."""

    query: str = ""
    types: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    owner: str = ""
    page: int = 1
    limit: int = 20
    sort_by: str = "match_score"
    descending: bool = True

    @property
    def cleaned_query(self) -> str:
        return " ".join(self.query.split())[:MAX_QUERY]

    @property
    def query_words(self) -> list[str]:
        return words(self.cleaned_query)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass
class Hit:
    """One result: enough to show and link it without touching the registry again."""

    type: str
    id: int
    name: str
    project: str
    description: str = ""
    owner: str = ""
    tags: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0
    parent_type: str = ""
    parent_name: str = ""
    matched_tags: dict[str, Any] = field(default_factory=dict)

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.type, self.type)

    @property
    def feast_type(self) -> str:
        return FEAST_TYPES.get(self.type, self.type)


@dataclass
class FacetValue:
    value: str
    count: int
    label: str = ""


@dataclass
class SearchResults:
    params: SearchParams
    hits: list[Hit]
    total: int
    facets: dict[str, list[FacetValue]]
    projects_searched: list[str]
    fuzzy: bool = False  # nothing matched as typed; these are names close to the query

    @property
    def pages(self) -> int:
        return ceil(self.total / self.params.limit) if self.total else 0

    @property
    def has_next(self) -> bool:
        return self.params.offset + self.params.limit < self.total

    @property
    def has_previous(self) -> bool:
        return self.params.page > 1

    def pagination(self) -> dict[str, Any]:
        """Feast's search pagination object."""
        return {
            "page": self.params.page,
            "limit": self.params.limit,
            "totalCount": self.total,
            "totalPages": self.pages,
            "hasNext": self.has_next,
            "hasPrevious": self.has_previous,
        }


def matched_tags(tags: dict[str, Any], query_words: list[str]) -> dict[str, Any]:
    """The tags whose key or value holds a word of the query (Feast's `matched_tags`)."""
    found = {}
    for key, value in (tags or {}).items():
        tag_words = words(f"{key} {value}")
        if any(tw.startswith(w) for w in query_words for tw in tag_words):
            found[key] = value
    return found


def score(query: str, name: str, description: str, tags: dict[str, Any]) -> int:
    """The match tier of one object for a (cleaned) query; 0 when it does not match.

    The Python statement of the ranking: the fallback ranks with it, and the
    PostgreSQL CASE expression (catalog.search_postgres) mirrors it."""
    q = query.lower()
    qwords = words(query)
    if not q or not qwords:
        return 0
    key = name.lower()
    if key == q:
        return NAME_EXACT
    if key.startswith(q):
        return NAME_PREFIX
    if q in key:
        return NAME_CONTAINS

    def has_all(field_words: list[str]) -> bool:
        return all(any(fw.startswith(w) for fw in field_words) for w in qwords)

    name_words, description_words = words(name), words(description)
    tag_words = words(" ".join(f"{k} {v}" for k, v in (tags or {}).items()))
    if has_all(name_words):
        return NAME_WORDS
    if has_all(description_words):
        return DESCRIPTION
    if has_all(tag_words):
        return TAGS
    if has_all(name_words + description_words + tag_words):
        return MIXED
    return 0


def facet_counts(rows: list[tuple[str, str, str, int]], tag_rows: list[tuple[str, str, int]]) -> dict:
    """Facets from (type, project, owner, count) groups and (tag key, value, count) rows."""
    types: Counter[str] = Counter()
    projects: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    for rtype, project, owner, n in rows:
        types[rtype] += n
        projects[project] += n
        if owner:
            owners[owner] += n
    return {
        "type": [
            FacetValue(t, n, TYPE_LABELS.get(t, t))
            for t, n in sorted(types.items(), key=lambda i: TYPE_ORDER.get(i[0]))
        ],
        "project": [FacetValue(p, n, p) for p, n in sorted(projects.items(), key=lambda i: (-i[1], i[0]))],
        "owner": [FacetValue(o, n, o) for o, n in sorted(owners.items(), key=lambda i: (-i[1], i[0]))[:FACET_SIZE]],
        "tag": [FacetValue(f"{k}:{v}", n, f"{k}={v}") for k, v, n in tag_rows[:FACET_SIZE]],
    }


FACET_SIZE = 15


def search(user: Any, params: SearchParams) -> SearchResults:
    """Search the registry as `user` (see the module docstring for the promises)."""
    if connection.vendor == "postgresql":
        from .search_postgres import PostgresSearch as Backend
    else:
        from .search_fallback import FallbackSearch as Backend
    return Backend(user, params).run()
