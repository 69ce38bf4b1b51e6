"""Search without PostgreSQL: the registry tables, restricted, filtered with icontains,
and ranked in Python by catalog.search.score. When nothing matches, names close to
the query (difflib) are offered instead, so a typo still finds the feature.

Meant for the embedded SQLite demo and tests (hundreds of objects); production
registries run on PostgreSQL and use catalog.search_postgres.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from django.db.models import F, Q, QuerySet, TextField
from django.db.models.functions import Cast, Coalesce

from access.policy import restrict

from . import search as s
from .search_index import OBJECT_MODELS

# How many visible names the typo pass compares at most.
FUZZY_SCAN = 20_000
FUZZY_CUTOFF = 0.6


class FallbackSearch:
    def __init__(self, user: Any, params: s.SearchParams):
        self.user = user
        self.params = params

    # -- candidate rows ---------------------------------------------------------------

    def _queryset(self, rtype: str) -> QuerySet:
        """Visible objects of one type as plain value dicts, with every filter but the query."""
        model = OBJECT_MODELS[rtype]
        queryset = restrict(model.objects.all(), self.user)
        if rtype == s.FEATURE:
            queryset = queryset.annotate(
                project_name=Coalesce("feature_view__project__name", "on_demand_feature_view__project__name"),
                owner_name=Coalesce("feature_view__owner", "on_demand_feature_view__owner"),
                parent_name=Coalesce("feature_view__name", "on_demand_feature_view__name"),
            )
        else:
            queryset = queryset.annotate(project_name=F("project__name"), owner_name=F("owner"))
        p = self.params
        if p.projects:
            queryset = queryset.filter(project_name__in=p.projects)
        if p.owner:
            queryset = queryset.filter(owner_name=p.owner)
        return queryset.annotate(tags_text=Cast("tags", TextField()))

    def _rows(self, rtype: str, condition: Q | None) -> list[dict]:
        queryset = self._queryset(rtype)
        if condition is not None:
            queryset = queryset.filter(condition)
        fields = ["pk", "name", "description", "tags", "project_name", "owner_name"]
        if rtype == s.FEATURE:
            fields += ["parent_name", "feature_view_id"]
        rows = list(queryset.values(*fields))
        if self.params.tags:  # JSON key lookups differ per database: checked here, on few rows
            rows = [r for r in rows if _has_tags(r["tags"] or {}, self.params.tags)]
        return rows

    def _types(self) -> list[str]:
        return [t for t in OBJECT_MODELS if not self.params.types or t in self.params.types]

    @staticmethod
    def _hit(rtype: str, row: dict, score: float, query_words: list[str]) -> s.Hit:
        parent_type = ""
        if rtype == s.FEATURE:
            parent_type = "feature_view" if row.get("feature_view_id") else "on_demand_feature_view"
        return s.Hit(
            type=rtype,
            id=row["pk"],
            name=row["name"],
            project=row["project_name"],
            description=row["description"] or "",
            owner=row["owner_name"] or "",
            tags=row["tags"] or {},
            score=score,
            parent_type=parent_type,
            parent_name=row.get("parent_name") or "",
            matched_tags=s.matched_tags(row["tags"] or {}, query_words),
        )

    # -- matching ---------------------------------------------------------------------

    def _matches(self) -> list[s.Hit]:
        query, qwords = self.params.cleaned_query, self.params.query_words
        condition = Q()
        for word in qwords:
            condition &= Q(name__icontains=word) | Q(description__icontains=word) | Q(tags_text__icontains=word)
        condition |= Q(name__icontains=query)
        hits = []
        for rtype in self._types():
            for row in self._rows(rtype, condition):
                tier = s.score(query, row["name"], row["description"], row["tags"])
                if tier:
                    hits.append(self._hit(rtype, row, tier, qwords))
        return hits

    def _close_names(self) -> list[s.Hit]:
        """Objects whose name (or a run of its words) is close to the query: typos."""
        q = self.params.cleaned_query.lower()
        qwords = self.params.query_words
        hits = []
        scanned = 0
        for rtype in self._types():
            for row in self._rows(rtype, None):
                scanned += 1
                if scanned > FUZZY_SCAN:
                    break
                similarity = _similarity(q, row["name"])
                if similarity >= FUZZY_CUTOFF:
                    hits.append(self._hit(rtype, row, round(s.FUZZY_MAX * similarity, 1), qwords))
        return hits

    def _listing(self) -> list[s.Hit]:
        return [self._hit(rtype, row, 0, []) for rtype in self._types() for row in self._rows(rtype, None)]

    # -- the answer -------------------------------------------------------------------

    def run(self) -> s.SearchResults:
        fuzzy = False
        if self.params.query_words:
            hits = self._matches()
            if not hits:
                hits = self._close_names()
                fuzzy = bool(hits)
        else:
            hits = self._listing()
        self._sort(hits)
        groups: Counter[tuple[str, str, str]] = Counter((h.type, h.project, h.owner) for h in hits)
        tag_counts: Counter[tuple[str, str]] = Counter(
            (str(k), str(v)) for h in hits for k, v in (h.tags or {}).items()
        )
        facets = s.facet_counts(
            [(*key, n) for key, n in groups.items()],
            [(k, v, n) for (k, v), n in sorted(tag_counts.items(), key=lambda i: (-i[1], i[0]))],
        )
        page = hits[self.params.offset : self.params.offset + self.params.limit]
        return s.SearchResults(
            params=self.params,
            hits=page,
            total=len(hits),
            facets=facets,
            projects_searched=sorted({h.project for h in hits} | set(self.params.projects)),
            fuzzy=fuzzy,
        )

    def _sort(self, hits: list[s.Hit]) -> None:
        p = self.params
        if p.sort_by == "name":
            hits.sort(key=lambda h: (h.name.lower(), s.TYPE_ORDER.get(h.type, 99)), reverse=p.descending)
        elif p.sort_by == "type":
            hits.sort(key=lambda h: (s.TYPE_ORDER.get(h.type, 99), h.name.lower()), reverse=p.descending)
        else:
            hits.sort(key=lambda h: (-h.score, s.TYPE_ORDER.get(h.type, 99), h.name.lower(), h.project))
            if not p.descending:
                hits.reverse()


def _has_tags(tags: dict[str, Any], wanted: tuple[tuple[str, str], ...]) -> bool:
    return all(key in tags and str(tags[key]) == value for key, value in wanted)


def _similarity(query: str, name: str) -> float:
    """difflib's ratio of the query to the whole name, or to the best run of as many
    words as the query has (so "drvier" finds "driver_hourly_stats")."""
    key = name.lower()
    best = difflib.SequenceMatcher(None, query, key).ratio()
    name_words = s.words(name)
    width = max(1, len(s.words(query)))
    for start in range(len(name_words)):
        run = " ".join(name_words[start : start + width])
        best = max(best, difflib.SequenceMatcher(None, " ".join(s.words(query)), run).ratio())
    return best
