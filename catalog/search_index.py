"""Keeping catalog.SearchDocument in step with the registry (PostgreSQL only).

A project's documents are rebuilt by diff: what the registry holds now is turned
into document values, hashed, and only rows whose hash changed are rewritten. Who
calls it:
- `apply` (catalog.repo.applier), once its transaction committed;
- the admin's bookkeeping (catalog.admin_audit.bump_versions);
- `post_save` of any registry object or Field (shell scripts, tests, the API);
- each search: its statement also asks whether any project's `version` moved past
  the one the index last saw (SearchIndexState, STALE_PROJECTS_SQL); if so
  `ensure_fresh()` syncs those projects and the search runs again, so a writer that
  forgot to call us costs one slow search, never a wrong one.

Deletions are not signalled (a delete receiver would make Django load every
cascaded Field row one by one); apply and the admin resync, and search restricts
through the live registry tables anyway, so a deleted object is never shown to a
user without superuser rights.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Model, Q
from django.db.models.functions import Coalesce
from django.db.models.signals import post_save
from django.dispatch import receiver

from access.models import Permission
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    Project,
    SavedDataset,
    SearchDocument,
    SearchIndexState,
)
from catalog.search import words

log = logging.getLogger(__name__)

FEATURE = "feature"
# The registry types search covers, in the order results of equal score are shown.
OBJECT_MODELS: dict[str, type[Model]] = {
    "feature_view": FeatureView,
    FEATURE: Field,
    "on_demand_feature_view": OnDemandFeatureView,
    "feature_service": FeatureService,
    "entity": Entity,
    "data_source": DataSource,
    "saved_dataset": SavedDataset,
    "permission": Permission,
}
BATCH = 2000
# Lexicon words shorter than this are not worth correcting; longer ones are not words.
MIN_TERM, MAX_TERM = 3, 64

# Words of a text as the index and the query see them: camelCase split, then anything
# not a letter or digit is a separator ("driver_hourly-stats.v2" -> driver hourly stats v2).
_WORDS_SQL = "regexp_replace(regexp_replace({x}, '([[:lower:][:digit:]])([[:upper:]])', '\\1 \\2', 'g'), '[^[:alnum:]]+', ' ', 'g')"  # noqa: E501
_VECTOR_SQL = (
    "setweight(to_tsvector('simple', {name}), 'A')"
    " || setweight(to_tsvector('simple', {description}), 'B')"
    " || setweight(to_tsvector('simple', {tags}), 'C')"
).format(
    name=_WORDS_SQL.format(x="name"),
    description=_WORDS_SQL.format(x="description"),
    tags=_WORDS_SQL.format(x="coalesce((SELECT string_agg(key || ' ' || value, ' ') FROM jsonb_each_text(tags)), '')"),
)


def enabled() -> bool:
    """The index is kept and read on PostgreSQL only (SQLite searches the registry directly)."""
    return connection.vendor == "postgresql"


# -- building document values -----------------------------------------------------------


def _doc(
    object_type: str,
    object_id: int,
    project_id: int,
    project_name: str,
    name: str,
    description: str,
    owner: str,
    tags: dict | None,
    parent: tuple[str, int, str] | None = None,
) -> dict[str, Any]:
    values = {
        "object_type": object_type,
        "object_id": object_id,
        "project_id": project_id,
        "project_name": project_name,
        "name": name,
        "key": name.lower(),
        "parent_type": parent[0] if parent else "",
        "parent_id": parent[1] if parent else None,
        "parent_name": parent[2] if parent else "",
        "description": description or "",
        "owner": owner or "",
        "tags": tags or {},
    }
    values["digest"] = hashlib.md5(
        json.dumps(values, sort_keys=True, default=str).encode(), usedforsecurity=False
    ).hexdigest()
    return values


def _object_docs(project_ids: Iterable[int] | None, only: dict[str, set[int]] | None = None) -> Iterator[dict]:
    """Documents of the registry objects (not features) of the given projects, or of
    the objects `only` names ({type: {ids}})."""
    for rtype, model in OBJECT_MODELS.items():
        if rtype == FEATURE:
            continue
        queryset = model.objects.all()
        if project_ids is not None:
            queryset = queryset.filter(project_id__in=project_ids)
        if only is not None:
            if not only.get(rtype):
                continue
            queryset = queryset.filter(pk__in=only[rtype])
        rows = queryset.values_list("pk", "project_id", "project__name", "name", "description", "owner", "tags")
        for pk, project_id, project_name, name, description, owner, tags in rows.iterator(chunk_size=BATCH):
            yield _doc(rtype, pk, project_id, project_name, name, description, owner, tags)


def _feature_docs(
    project_ids: Iterable[int] | None, view_ids: set[int] | None = None, field_ids: set[int] | None = None
) -> Iterator[dict]:
    """Documents of features (of projects, of views, or by id); a feature's project
    and owner are its view's."""
    queryset = Field.objects.annotate(
        view_id=Coalesce("feature_view_id", "on_demand_feature_view_id"),
        view_name=Coalesce("feature_view__name", "on_demand_feature_view__name"),
        view_owner=Coalesce("feature_view__owner", "on_demand_feature_view__owner"),
        view_project_id=Coalesce("feature_view__project_id", "on_demand_feature_view__project_id"),
        view_project_name=Coalesce("feature_view__project__name", "on_demand_feature_view__project__name"),
    )
    if project_ids is not None:
        ids = list(project_ids)
        queryset = queryset.filter(Q(feature_view__project_id__in=ids) | Q(on_demand_feature_view__project_id__in=ids))
    if view_ids is not None:
        queryset = queryset.filter(Q(feature_view_id__in=view_ids) | Q(on_demand_feature_view_id__in=view_ids))
    if field_ids is not None:
        queryset = queryset.filter(pk__in=field_ids)
    rows = queryset.values_list(
        "pk",
        "feature_view_id",
        "view_id",
        "view_name",
        "view_owner",
        "view_project_id",
        "view_project_name",
        "name",
        "description",
        "tags",
    )
    for pk, fv_id, view_id, view_name, owner, project_id, project_name, name, description, tags in rows.iterator(
        chunk_size=BATCH
    ):
        parent_type = "feature_view" if fv_id is not None else "on_demand_feature_view"
        yield _doc(
            FEATURE, pk, project_id, project_name, name, description, owner, tags, (parent_type, view_id, view_name)
        )


# -- writing ----------------------------------------------------------------------------


_COLUMNS = (
    "object_type",
    "object_id",
    "project_id",
    "project_name",
    "name",
    "key",
    "parent_type",
    "parent_id",
    "parent_name",
    "description",
    "owner",
    "tags",
    "digest",
)


def _insert(rows: list[dict]) -> None:
    """Insert documents with their search vector in one pass: COPY into a scratch
    table, then INSERT ... SELECT computing the vector (Django's bulk_create plus an
    UPDATE took ten times longer at 100,000 rows, most of it in Python)."""
    if not rows:
        return
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS searchdoc_load AS "  # noqa: S608 - constant SQL
            f"SELECT {columns} FROM catalog_searchdocument WITH NO DATA"
        )
        cursor.execute("TRUNCATE searchdoc_load")
        with cursor.cursor.copy(f"COPY searchdoc_load ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c == "tags" else row[c] for c in _COLUMNS])
        cursor.execute(
            f"INSERT INTO catalog_searchdocument ({columns}, search_vector) "  # noqa: S608 - constant SQL
            f"SELECT {columns}, {_VECTOR_SQL} FROM searchdoc_load"
        )
        # The name lexicon of the typo phase (migration 0003): every distinct key.
        cursor.execute(
            "INSERT INTO catalog_searchname (key) SELECT DISTINCT key FROM searchdoc_load ON CONFLICT (key) DO NOTHING"
        )
        cursor.execute("TRUNCATE searchdoc_load")
        terms = {w for row in rows for w in _terms(row) if MIN_TERM <= len(w) <= MAX_TERM}
        cursor.execute(
            "INSERT INTO catalog_searchterm (word) SELECT unnest(%s::text[]) ON CONFLICT (word) DO NOTHING",
            [sorted(terms)],
        )


def _terms(row: dict) -> list[str]:
    """The words of a document, for the typo-correction lexicon (catalog.SearchTerm)."""
    tags = " ".join(f"{k} {v}" for k, v in row["tags"].items())
    return words(f"{row['name']} {row['description']} {tags}")


def _write(wanted: dict[tuple[str, int], dict], existing: dict[tuple[str, int], tuple[int, str]]) -> int:
    """Make the rows `existing` ({(type, id): (pk, digest)}) match `wanted`; returns
    the number of rows written or deleted."""
    stale = [pk for key, (pk, digest) in existing.items() if key not in wanted or wanted[key]["digest"] != digest]
    fresh = [v for key, v in wanted.items() if key not in existing or existing[key][1] != v["digest"]]
    for start in range(0, len(stale), BATCH * 5):
        SearchDocument.objects.filter(pk__in=stale[start : start + BATCH * 5]).delete()
    _insert(fresh)
    return len(stale) + len(fresh)


def _lock_state(project_id: int) -> SearchIndexState:
    try:
        with transaction.atomic():
            SearchIndexState.objects.get_or_create(project_id=project_id)
    except IntegrityError:  # created meanwhile by another process
        pass
    return SearchIndexState.objects.select_for_update().get(project_id=project_id)


def sync_project(project_id: int) -> int:
    """Bring one project's documents up to date with the registry; returns rows changed.

    Serialised per project by a row lock on its SearchIndexState."""
    if not enabled():
        return 0
    with transaction.atomic():
        version = Project.objects.filter(pk=project_id).values_list("version", flat=True).first()
        if version is None:
            return 0
        state = _lock_state(project_id)
        wanted = {(d["object_type"], d["object_id"]): d for d in _object_docs([project_id])}
        wanted.update({(d["object_type"], d["object_id"]): d for d in _feature_docs([project_id])})
        existing = {
            (t, oid): (pk, digest)
            for pk, t, oid, digest in SearchDocument.objects.filter(project_id=project_id).values_list(
                "pk", "object_type", "object_id", "digest"
            )
        }
        changed = _write(wanted, existing)
        state.version = version
        state.save()
    if changed:
        log.info("search index: project %s synced, %d rows changed", project_id, changed)
    return changed


def projects_changed(project_ids: Iterable[int | None]) -> None:
    """Resync these projects once the current transaction commits (apply, the admin)."""
    if not enabled():
        return
    for pk in {pk for pk in project_ids if pk is not None}:
        transaction.on_commit(lambda pk=pk: sync_project(pk))


# Projects whose documents may lag behind the registry: never synced, or their version
# moved since. catalog.search_postgres also asks `EXISTS (...)` of it inside its search
# statement, so a fresh index costs no extra round trip.
STALE_PROJECTS_SQL = (
    "SELECT p.id FROM catalog_project p LEFT JOIN catalog_searchindexstate st ON st.project_id = p.id "
    "WHERE st.project_id IS NULL OR st.version <> p.version"
)


def ensure_fresh() -> None:
    """Sync every project whose version moved since the index last saw it (one query
    when nothing did)."""
    if not enabled():
        return
    with connection.cursor() as cursor:
        cursor.execute(STALE_PROJECTS_SQL)
        stale = [pk for (pk,) in cursor.fetchall()]
    for pk in stale:
        sync_project(pk)


def index_objects(object_type: str, ids: set[int]) -> None:
    """Rewrite the documents of some objects (and, for views, of their features)."""
    if not enabled() or not ids:
        return
    if object_type == FEATURE:
        docs = list(_feature_docs(None, field_ids=ids))
    else:
        docs = list(_object_docs(None, {object_type: ids}))
    keys = Q(object_type=object_type, object_id__in=ids)
    if object_type in ("feature_view", "on_demand_feature_view"):
        docs += list(_feature_docs(None, view_ids=ids))
        keys |= Q(object_type=FEATURE, parent_type=object_type, parent_id__in=ids)
    wanted = {(d["object_type"], d["object_id"]): d for d in docs}
    with transaction.atomic():
        existing = {
            (t, oid): (pk, digest)
            for pk, t, oid, digest in SearchDocument.objects.filter(keys).values_list(
                "pk", "object_type", "object_id", "digest"
            )
        }
        _write(wanted, existing)


# -- signals ----------------------------------------------------------------------------


@receiver(post_save)
def _saved(sender: type[Model], instance: Model, raw: bool = False, **kwargs: Any) -> None:
    if raw or not enabled():
        return
    rtype = FEATURE if sender is Field else getattr(sender, "resource_type", "")
    if rtype in OBJECT_MODELS:
        index_objects(rtype, {instance.pk})
