"""Search on PostgreSQL: one raw statement over catalog.SearchDocument per phase.

Two phases, both served by indexes (migrations 0002 and 0003):

1. As typed: a document matches when its weighted tsvector holds every query word as
   a prefix (`driver:* & trip:*`) or its lower-cased name contains the query. The
   score is a CASE over catalog.search's tiers (the order of its Python `score`:
   name, then description, then tags); shorter names break ties.
2. Only when nothing matched: typos. Each query word missing from the lexicon
   (catalog.SearchTerm) is replaced by its closest lexicon words (pg_trgm
   similarity, one statement for all words), and the corrected query runs through
   the full-text index again; documents whose whole name is trigram-similar to the
   query match too, found through the lexicon of distinct names
   (`catalog_searchname`) and then read by key. Scores are scaled below every tier
   of phase 1 (catalog.search.FUZZY_MAX).

Why the statement looks the way it does (issue 7, p95 < 50 ms at 110,000 documents,
docs/benchmarks.md):

- It is written as SQL text here, once, instead of a Django Q/Case tree per type:
  compiling that tree cost 3-5 ms a search.
- The matching rows are materialized once, narrow (no description or vector), and
  grouped once by (type, project, owner, tags): the type/project/owner facets are
  sums over those groups and the tag facet expands each distinct tag set once,
  instead of running `jsonb_each_text` over every match (a description word matches
  up to 17,000 documents here). Counts stay exact.
- Visibility is decided by `access.policy.restrict` per type, as before, and inlined
  as `object_type = '<type>' AND object_id IN (<restrict's SQL>)` (type test first,
  so each row probes one hashed id set; a view type and its features share one).
  This also hides documents of objects deleted behind the index's back.
- Freshness costs no round trip of its own: the statement also says whether some
  project's documents lag behind the registry (same snapshot); only then is the
  index synced (search_index.ensure_fresh) and the statement run again.
- Typos: the as-typed statement finds nothing, then ONE statement fetches the
  lexicon's candidates for every word and the names similar to the whole query
  (with its pg_trgm threshold set in the same message), then the corrected
  statement runs: three round trips. Trigram similarity of whole names is computed
  on distinct names (100,000 features share 500 names here), not per document: it
  is the costliest per-row function of the search.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction

try:
    from psycopg import ClientCursor
except ImportError:  # psycopg2: always the transaction-block path
    ClientCursor = None

from access.policy import restrict

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
VIEW_TYPES = ("feature_view", "on_demand_feature_view")

# The narrow columns every phase materializes; `score` is added per phase.
_M_COLUMNS = "d.id, d.object_type, d.project_name, d.owner, d.tags, d.key, {type_order} AS type_order"
_TYPE_ORDER = "CASE d.object_type {whens} ELSE 99 END".format(
    whens=" ".join(f"WHEN '{t}' THEN {i}" for t, i in s.TYPE_ORDER.items())
)
_DETAILS = ", ".join(f"'{c}', d.{c}" for c in (*HIT_FIELDS, *FEATURE_FIELDS))


class Sql:
    """SQL text with its positional parameters, concatenated in order."""

    def __init__(self, text: str = "", params: list | None = None):
        self.text = text
        self.params = list(params or [])

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    @classmethod
    def join(cls, separator: str, parts: list[Sql]) -> Sql:
        return cls(separator.join(p.text for p in parts), [x for p in parts for x in p.params])


def like_escape(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (backslash is PostgreSQL's escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tsquery_text(word_groups: list[list[str]], weight: str = "") -> str:
    """All groups required; within a group any word, each as a prefix, optionally
    only in fields of `weight` (A name, B description, C tags). Words come from
    catalog.search.words (letters and digits only)."""
    return " & ".join("(" + " | ".join(f"{w}:*{weight}" for w in group) + ")" for group in word_groups)


def _tsq(word_groups: list[list[str]], weight: str = "") -> Sql:
    return Sql("to_tsquery('simple', %s)", [tsquery_text(word_groups, weight)])


def tiers(query: str, groups: list[list[str]], scale: float = 1.0) -> Sql:
    """The CASE of catalog.search's tiers for a document `d` that matches `groups`
    or contains `query` in its name, times `scale` (the order of search.score)."""

    def tier(value: int) -> str:  # float8, as the scores have always been
        return f"{round(value * scale, 1)!r}::float8"

    return (
        Sql(f"CASE WHEN d.key = %s THEN {tier(s.NAME_EXACT)}", [query])
        + Sql(f" WHEN d.key LIKE %s THEN {tier(s.NAME_PREFIX)}", [like_escape(query) + "%"])
        + Sql(f" WHEN d.key LIKE %s THEN {tier(s.NAME_CONTAINS)}", ["%" + like_escape(query) + "%"])
        + Sql(" WHEN d.search_vector @@ ")
        + _tsq(groups, "A")
        + f" THEN {tier(s.NAME_WORDS)} WHEN d.search_vector @@ "
        + _tsq(groups, "B")
        + f" THEN {tier(s.DESCRIPTION)} WHEN d.search_vector @@ "
        + _tsq(groups, "C")
        + f" THEN {tier(s.TAGS)} WHEN d.search_vector @@ "
        + _tsq(groups)
        + f" THEN {tier(s.MIXED)} ELSE 0.0::float8 END"
    )


def fetch_with_threshold(threshold: float, sql: str, params: list) -> tuple:
    """The one row of `sql`, run with pg_trgm's similarity threshold (the `%` operator)
    set for it alone. With client-side parameter binding (Django's default on
    psycopg 3) the SET LOCAL and the query travel as one simple-protocol message, which
    PostgreSQL runs as one implicit transaction: one round trip, no BEGIN/COMMIT, and
    the setting ends with it (inside an outer transaction, e.g. ATOMIC_REQUESTS, it
    lasts until that one ends, as any SET LOCAL). Otherwise (server-side binding
    allows one statement per message) they run in a transaction block of their own."""
    with connection.cursor() as cursor:
        if ClientCursor is not None and isinstance(getattr(cursor, "cursor", None), ClientCursor):
            cursor.execute("SET LOCAL pg_trgm.similarity_threshold = %s; " + sql, [threshold, *params])
            cursor.nextset()
            return cursor.fetchone()
        with transaction.atomic():
            cursor.execute("SET LOCAL pg_trgm.similarity_threshold = %s", [threshold])
            cursor.execute(sql, params)
            return cursor.fetchone()


def _restricted(model: Any, user: Any) -> Sql | None:
    """restrict()'s SQL for the ids of `model` the user may DESCRIBE; None when none."""
    try:
        text, params = restrict(model.objects.all(), user).order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return None
    return Sql(text, list(params))


def visibility(user: Any, types: tuple[str, ...]) -> Sql | None:
    """A condition on `d`: the documents of objects `user` may DESCRIBE among `types`
    (all when empty); a feature is visible when its view is. None when nothing is.

    The type test comes first so each row probes one hashed id set; a view type and
    the features of its views share theirs. The id sets are restrict()'s subqueries
    inlined (a CTE would be scanned into the hash table instead of an index-only
    scan, 2-4 ms slower at 10,000 views)."""
    wanted = [t for t in search_index.OBJECT_MODELS if not types or t in types]
    gated = {t for t in wanted if t != s.FEATURE} | (set(VIEW_TYPES) if s.FEATURE in wanted else set())
    ids = {rtype: _restricted(search_index.OBJECT_MODELS[rtype], user) for rtype in gated}
    conditions: list[Sql] = []
    for view in VIEW_TYPES:  # a view and its features: one hashed id set
        if ids.get(view) is None:
            continue
        kinds = []
        if view in wanted:
            kinds.append(f"d.object_type = '{view}'")
        if s.FEATURE in wanted:
            kinds.append(f"(d.object_type = '{s.FEATURE}' AND d.parent_type = '{view}')")
        if kinds:
            view_id = f"CASE d.object_type WHEN '{s.FEATURE}' THEN d.parent_id ELSE d.object_id END"
            conditions.append(Sql(f"(({' OR '.join(kinds)}) AND {view_id} IN (") + ids[view] + "))")
    for rtype in wanted:
        if rtype not in VIEW_TYPES and rtype != s.FEATURE and ids[rtype] is not None:
            conditions.append(Sql(f"(d.object_type = '{rtype}' AND d.object_id IN (") + ids[rtype] + "))")
    if not conditions:
        return None
    return Sql("(") + Sql.join(" OR ", conditions) + ")"


class PostgresSearch:
    def __init__(self, user: Any, params: s.SearchParams):
        self.user = user
        self.params = params
        self.query = params.cleaned_query.lower()
        self.groups = [[w] for w in params.query_words]

    def _filters(self, visible: Sql) -> Sql:
        """Visibility and every filter but the query, on `d`."""
        p = self.params
        where = [visible]
        if p.projects:
            where.append(Sql("d.project_name = ANY(%s)", [list(p.projects)]))
        if p.owner:
            where.append(Sql("d.owner = %s", [p.owner]))
        for key, value in p.tags:
            where.append(Sql("d.tags @> %s::jsonb", [json.dumps({key: value})]))
        return Sql.join(" AND ", where)

    def _as_typed(self, filters: Sql) -> Sql:
        """Phase 1: the matching rows, scored (or every visible row when no query)."""
        columns = Sql(_M_COLUMNS.format(type_order=_TYPE_ORDER) + ", ")
        if not self.groups:
            return columns + "0.0 AS score FROM catalog_searchdocument d WHERE " + filters
        match = (
            Sql("(d.search_vector @@ ")
            + _tsq(self.groups)
            + Sql(" OR d.key LIKE %s)", ["%" + like_escape(self.query) + "%"])
        )
        return (
            columns
            + tiers(self.query, self.groups)
            + " AS score FROM catalog_searchdocument d WHERE "
            + match
            + " AND "
        ) + filters

    def _typo_candidates(self) -> tuple[list[list[str]], list[list[str]]]:
        """(corrected word groups, [(similar name, its similarity as text)]).

        Per query word: itself when the lexicon knows a word starting with it, else
        also its closest lexicon words. Trigram similarity (indexed) picks candidates
        loosely, since a swap of two letters leaves few trigrams in common
        (drvier/driver: 0.27); difflib's ratio (0.83 there) then keeps the close ones.
        Whole names: the distinct names trigram-similar to the query, through a GiST
        trigram index (the planner passes over a GIN one on a table this small and
        computes `similarity()` for every name instead: 6-14 ms for 2,200 names
        against 0.4 ms)."""
        words = [w for [w] in self.groups if len(w) >= search_index.MIN_TERM]
        # Names: the `%` candidates at WORD_SIMILARITY narrowed to NAME_SIMILARITY, compared
        # in float8 as pg_trgm compares its threshold (one statement, one threshold).
        found, names = fetch_with_threshold(
            WORD_SIMILARITY,
            "SELECT (SELECT coalesce(json_agg(json_build_array(u.word, CASE WHEN EXISTS "
            "  (SELECT 1 FROM catalog_searchterm t WHERE t.word LIKE u.pattern) THEN NULL ELSE "
            "  ARRAY(SELECT t.word FROM catalog_searchterm t WHERE t.word %% u.word "
            "   ORDER BY similarity(t.word, u.word) DESC, t.word LIMIT %s) END)), '[]') "
            " FROM unnest(%s::text[], %s::text[]) AS u(word, pattern)), "
            "(SELECT coalesce(json_agg(json_build_array(key, sim::text)), '[]') FROM "
            " (SELECT key, similarity(key, %s) AS sim FROM catalog_searchname WHERE key %% %s) n "
            " WHERE sim >= %s::float8)",
            [
                CANDIDATES_PER_WORD,
                words,
                [like_escape(w) + "%" for w in words],
                self.query,
                self.query,
                NAME_SIMILARITY,
            ],
        )
        candidates = {word: close for word, close in found if close is not None}
        groups = []
        for [word] in self.groups:
            if word not in candidates:
                groups.append([word])
                continue
            close = difflib.get_close_matches(word, candidates[word], n=CORRECTIONS_PER_WORD, cutoff=WORD_RATIO)
            groups.append([word, *close])
        return groups, names

    def _typos(self, filters: Sql) -> tuple[list[Sql], Sql]:
        """Phase 2: (extra CTEs, rows): documents matching the corrected words, scored
        with the scaled tiers, and documents whose name is similar to the query,
        scored by that similarity. One scan (the full-text and key indexes OR-ed), so
        visibility is evaluated once per document."""
        groups, names = self._typo_candidates()
        columns = Sql(_M_COLUMNS.format(type_order=_TYPE_ORDER) + ", ")
        corrected = _tsq(groups)
        similar = Sql(
            "similar_names AS (SELECT * FROM unnest(%s::text[], %s::real[]) AS n(key, similarity))",
            [[n for n, _ in names], [x for _, x in names]],
        )
        rows = (
            columns
            + "CASE WHEN d.search_vector @@ "
            + corrected
            + " THEN "
            + tiers(self.query, groups, s.FUZZY_MAX / s.NAME_EXACT)
            + f" ELSE (n.similarity * {s.FUZZY_MAX})::float8 END AS score "  # in real, like similarity()
            + "FROM catalog_searchdocument d LEFT JOIN similar_names n ON n.key = d.key WHERE (d.search_vector @@ "
            + corrected
            + Sql(" OR d.key = ANY(%s::text[])) AND ", [[n for n, _ in names]])
            + filters
        )
        return [similar], rows

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

    def _answer(self, ctes: list[Sql], rows: Sql, matched: bool, check_fresh: bool = False) -> tuple:
        """(type/project/owner groups, tag counts, page rows, index stale?) in ONE
        statement: the matching documents are found and scored once (a materialized
        CTE of narrow rows), grouped once by (type, project, owner, tags) for every
        facet, and top-N sorted; only the page's rows are then read whole. With
        `check_fresh` it also tells whether some project's documents lag behind the
        registry (search_index.STALE_PROJECTS_SQL), in the same snapshot."""
        p = self.params
        score = "pg.score" if matched else "0.0"
        facets = (
            ", g AS MATERIALIZED (SELECT object_type, project_name, owner, tags, count(*) AS n FROM m "
            "GROUP BY 1, 2, 3, 4) SELECT "
            "(SELECT coalesce(json_agg(json_build_array(object_type, project_name, owner, n)), '[]') FROM "
            " (SELECT object_type, project_name, owner, sum(n)::bigint AS n FROM g GROUP BY 1, 2, 3) x), "
            "(SELECT coalesce(json_agg(json_build_array(k, v, n)), '[]') FROM "
            " (SELECT t.key AS k, t.value AS v, sum(g.n)::bigint AS n "
            "  FROM g CROSS JOIN LATERAL jsonb_each_text(g.tags) t "
            "  GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %s) x), "
        )
        page = (
            f"(SELECT coalesce(json_agg(json_build_object({_DETAILS}, 'score', {score}) "  # noqa: S608 - constants
            f"  ORDER BY {self._order_sql(matched, 'pg.')}), '[]') FROM "
            f" (SELECT * FROM m ORDER BY {self._order_sql(matched)} LIMIT %s OFFSET %s) pg "
            " JOIN catalog_searchdocument d ON d.id = pg.id), "
        )
        fresh = f"EXISTS ({search_index.STALE_PROJECTS_SQL})" if check_fresh else "false"
        body = Sql("WITH ") + Sql.join(", ", [*ctes, Sql("m AS MATERIALIZED (SELECT ") + rows + ")"])
        body = body + facets + page + fresh
        with connection.cursor() as cursor:
            cursor.execute(body.text, [*body.params, s.FACET_SIZE, p.limit, p.offset])
            groups, tags, page, stale = cursor.fetchone()
        return [tuple(g) for g in groups], [tuple(t) for t in tags], page, stale

    def run(self) -> s.SearchResults:
        visible = visibility(self.user, self.params.types)
        if visible is None:  # nothing to show, however fresh the index
            return self._results([], [], [], fuzzy=False)
        filters = self._filters(visible)
        matched = bool(self.groups)
        rows = self._as_typed(filters)
        groups, tags, page, stale = self._answer([], rows, matched, check_fresh=True)
        if stale:  # a writer did not resync: catch up first, then answer from the fresh index
            search_index.ensure_fresh()
            groups, tags, page, _ = self._answer([], rows, matched)
        if matched and not groups:
            extra, typo_rows = self._typos(filters)
            groups, tags, page, _ = self._answer(extra, typo_rows, matched)
            return self._results(groups, tags, page, fuzzy=bool(groups))
        return self._results(groups, tags, page, fuzzy=False)

    def _results(self, groups: list, tags: list, rows: list, fuzzy: bool) -> s.SearchResults:
        p = self.params
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
