"""Search on PostgreSQL: indexed queries over catalog.SearchDocument.

Two phases, both served by the GIN indexes of migration 0002:

1. As typed: a document matches when its weighted tsvector holds every query word as
   a prefix (`driver:* & trip:*`) or its lower-cased name contains the query. The
   score is a CASE over catalog.search's tiers (the order of its Python `score`:
   name, then description, then tags); shorter names break ties.
2. Only when nothing matched: typos. Each query word missing from the lexicon
   (catalog.SearchTerm) is replaced by its closest lexicon words (pg_trgm
   similarity), and the corrected query runs through the full-text index again;
   names trigram-similar to the whole query match too. Scores are scaled below
   every tier of phase 1 (catalog.search.FUZZY_MAX).

Typos get their own phase because trigram candidates are many (a 20-character name
shares trigrams with thousands of others) and rechecking them costs more than the
whole exact search; the SQLite fallback behaves the same way (typos only when
nothing matched).

Visibility comes first: for each type, `object_id IN (restrict(<model>, user))`
(for features, their view's), so matching, counting and facets only ever see what
the user may DESCRIBE; this also hides documents of objects deleted behind the
index's back.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.contrib.postgres.lookups import TrigramSimilar
from django.contrib.postgres.search import SearchQuery, TrigramSimilarity
from django.db import connection, transaction
from django.db.models import Case, F, FloatField, Q, QuerySet, Value, When

from access.policy import restrict
from catalog.models import FeatureView, OnDemandFeatureView, SearchDocument

from . import search as s
from . import search_index

HIT_FIELDS = ("object_type", "object_id", "name", "project_name", "description", "owner", "tags")
FEATURE_FIELDS = ("parent_type", "parent_name")
# Phase 2: how alike a lexicon word (or a whole name) must be to stand for the query's.
WORD_SIMILARITY = 0.2  # trigram candidates (loose) ...
CANDIDATES_PER_WORD = 20
WORD_RATIO = 0.7  # ... of which difflib keeps the close ones
CORRECTIONS_PER_WORD = 3
NAME_SIMILARITY = 0.5


def visible_documents(user: Any) -> QuerySet:
    """The documents of objects `user` may DESCRIBE (restrict() per type)."""
    condition = Q(pk__in=[])
    for rtype, model in search_index.OBJECT_MODELS.items():
        if rtype == s.FEATURE:
            continue
        visible = restrict(model.objects.all(), user).values("pk")
        condition |= Q(object_type=rtype, object_id__in=visible)
        if model in (FeatureView, OnDemandFeatureView):  # a feature is visible when its view is
            condition |= Q(object_type=s.FEATURE, parent_type=rtype, parent_id__in=visible)
    return SearchDocument.objects.filter(condition)


def _pairs(columns: str) -> str:
    """`d.a, d.b` -> `'a', d.a, 'b', d.b` for json_build_object."""
    return ", ".join(f"'{c.strip()[2:]}', {c.strip()}" for c in columns.split(","))


def _tsquery(word_groups: list[list[str]], weight: str = "") -> SearchQuery:
    """All groups required; within a group any word, each as a prefix, optionally
    only in fields of `weight` (A name, B description, C tags)."""
    text = " & ".join("(" + " | ".join(f"{w}:*{weight}" for w in group) + ")" for group in word_groups)
    return SearchQuery(text, search_type="raw", config="simple")


def _tiers(query: str, groups: list[list[str]], scale: float = 1.0) -> Case:
    """The CASE of catalog.search's tiers, times `scale`."""
    everything = _tsquery(groups)

    def tier(value: int) -> Value:
        return Value(round(value * scale, 1))

    return Case(
        When(key=query, then=tier(s.NAME_EXACT)),
        When(key__startswith=query, then=tier(s.NAME_PREFIX)),
        When(key__contains=query, then=tier(s.NAME_CONTAINS)),
        When(search_vector=_tsquery(groups, "A"), then=tier(s.NAME_WORDS)),
        When(search_vector=_tsquery(groups, "B"), then=tier(s.DESCRIPTION)),
        When(search_vector=_tsquery(groups, "C"), then=tier(s.TAGS)),
        When(search_vector=everything, then=tier(s.MIXED)),
        default=TrigramSimilarity("key", Value(query)) * s.FUZZY_MAX,
        output_field=FloatField(),
    )


class PostgresSearch:
    def __init__(self, user: Any, params: s.SearchParams):
        self.user = user
        self.params = params
        self.query = params.cleaned_query.lower()
        self.groups = [[w] for w in params.query_words]

    def _filtered(self) -> QuerySet:
        p = self.params
        docs = visible_documents(self.user)
        if p.types:
            docs = docs.filter(object_type__in=p.types)
        if p.projects:
            docs = docs.filter(project_name__in=p.projects)
        if p.owner:
            docs = docs.filter(owner=p.owner)
        for key, value in p.tags:
            docs = docs.filter(tags__contains={key: value})
        return docs

    def _as_typed(self, docs: QuerySet) -> QuerySet:
        everything = _tsquery(self.groups)
        return docs.filter(Q(search_vector=everything) | Q(key__contains=self.query)).annotate(
            score=_tiers(self.query, self.groups)
        )

    def _corrections(self) -> list[list[str]]:
        """Per query word: itself when the lexicon knows a word starting with it, else
        also its closest lexicon words. Trigram similarity (indexed) picks candidates
        loosely, since a swap of two letters leaves few trigrams in common
        (drvier/driver: 0.27); difflib's ratio (0.83 there) then keeps the close ones."""
        groups = []
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pg_trgm.similarity_threshold = %s", [WORD_SIMILARITY])
            for [word] in self.groups:
                cursor.execute(
                    "SELECT word FROM catalog_searchterm WHERE word LIKE %s LIMIT 1", [word.replace("_", r"\_") + "%"]
                )
                if cursor.fetchone() or len(word) < search_index.MIN_TERM:
                    groups.append([word])
                    continue
                cursor.execute(
                    "SELECT word FROM catalog_searchterm WHERE word %% %s ORDER BY similarity(word, %s) DESC, word "
                    "LIMIT %s",
                    [word, word, CANDIDATES_PER_WORD],
                )
                candidates = [r[0] for r in cursor.fetchall()]
                close = difflib.get_close_matches(word, candidates, n=CORRECTIONS_PER_WORD, cutoff=WORD_RATIO)
                groups.append([word, *close])
        return groups

    def _typos(self, docs: QuerySet) -> QuerySet:
        groups = self._corrections()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pg_trgm.similarity_threshold = %s", [NAME_SIMILARITY])
        corrected = _tsquery(groups)
        scale = s.FUZZY_MAX / s.NAME_EXACT
        similar = TrigramSimilarity("key", Value(self.query))
        return docs.filter(Q(search_vector=corrected) | TrigramSimilar(F("key"), Value(self.query))).annotate(
            score=Case(
                When(search_vector=corrected, then=_tiers(self.query, groups, scale)),
                default=similar * s.FUZZY_MAX,
                output_field=FloatField(),
            )
        )

    def _order_sql(self, matched: bool, prefix: str = "") -> str:
        p = self.params
        direction = "DESC" if p.descending else "ASC"
        key, kind, project = f"{prefix}key", f"{prefix}type_order", f"{prefix}project_name"
        if p.sort_by == "name":
            return f"{key} {direction}, {kind}, {project}"
        if p.sort_by == "type":
            return f"{kind} {direction}, {key}, {project}"
        if matched:  # ties: the shorter (more specific) name first
            return f"{prefix}score {direction}, {kind}, length({key}), {key}, {project}"
        return f"{kind}, {key}, {project}"

    def _answer(self, docs: QuerySet, matched: bool) -> tuple[list, list, list]:
        """(type/project/owner groups, tag counts, page rows) in ONE statement: the
        matching documents are found and scored once (a materialized CTE of narrow
        rows), counted, tag-counted and sorted there; only the page's rows are then
        read whole."""
        p = self.params
        type_order = Case(*[When(object_type=t, then=Value(i)) for t, i in s.TYPE_ORDER.items()], default=Value(99))
        fields = ["id", "object_type", "project_name", "owner", "tags", "key", "type_order"]
        fields += ["score"] if matched else []
        inner, params = docs.annotate(type_order=type_order).order_by().values(*fields).query.sql_with_params()
        score = "pg.score" if matched else "0.0"
        details = ", ".join(f"d.{c}" for c in (*HIT_FIELDS, *FEATURE_FIELDS))
        sql = (
            f"WITH m AS MATERIALIZED ({inner}) SELECT "  # noqa: S608 - Django's own SQL and constants
            "(SELECT coalesce(json_agg(json_build_array(object_type, project_name, owner, n)), '[]') FROM "
            " (SELECT object_type, project_name, owner, count(*) AS n FROM m GROUP BY 1, 2, 3) g), "
            "(SELECT coalesce(json_agg(json_build_array(k, v, n)), '[]') FROM "
            " (SELECT t.key AS k, t.value AS v, count(*) AS n FROM m CROSS JOIN LATERAL jsonb_each_text(m.tags) AS t "
            "  GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %s) x), "
            f"(SELECT coalesce(json_agg(json_build_object({_pairs(details)}, 'score', {score}) "
            f"  ORDER BY {self._order_sql(matched, 'pg.')}), '[]') FROM "
            f" (SELECT * FROM m ORDER BY {self._order_sql(matched)} LIMIT %s OFFSET %s) pg "
            " JOIN catalog_searchdocument d ON d.id = pg.id)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, s.FACET_SIZE, p.limit, p.offset])
            groups, tags, rows = cursor.fetchone()
        return [tuple(g) for g in groups], [tuple(t) for t in tags], rows

    def run(self) -> s.SearchResults:
        search_index.ensure_fresh()
        with transaction.atomic():  # SET LOCAL (phase 2) lasts until the end of this block
            return self._run()

    def _run(self) -> s.SearchResults:
        p = self.params
        base = self._filtered()
        matched = bool(self.groups)
        fuzzy = False
        groups, tags, rows = self._answer(self._as_typed(base) if matched else base, matched)
        if matched and not groups:
            groups, tags, rows = self._answer(self._typos(base), matched)
            fuzzy = bool(groups)
        qwords = p.query_words
        hits = [
            s.Hit(
                type=r["object_type"],
                id=r["object_id"],
                name=r["name"],
                project=r["project_name"],
                description=r["description"],
                owner=r["owner"],
                tags=r["tags"] or {},
                score=round(r.get("score") or 0.0, 1),
                parent_type=r["parent_type"],
                parent_name=r["parent_name"],
                matched_tags=s.matched_tags(r["tags"] or {}, qwords),
            )
            for r in rows
        ]
        return s.SearchResults(
            params=p,
            hits=hits,
            total=sum(g[3] for g in groups),
            facets=s.facet_counts(groups, tags),
            projects_searched=sorted({g[1] for g in groups} | set(p.projects)),
            fuzzy=fuzzy,
        )
