"""The registry as serving needs it: plain, immutable metadata per project, cached
in-process and rebuilt the moment the project changes.

Every request costs one single-row query, `SELECT id, version, updated_at, <access
epoch> FROM catalog_project WHERE name = ...` (`locate`); when the pair (version, updated_at) differs from the
cached snapshot's, the snapshot is rebuilt (about ten queries, once per change per
process). `Project.version` is bumped (and `updated_at` set) in the same statement by
every apply, admin edit and registry-API write, so a change is visible to the very
next request of every process: no stale window like Feast's 60-600 s registry cache
(feast#5664), and no per-request protobuf parsing (feast#3442). `updated_at` is part of
the key so that a project deleted and recreated with the same id and version (test
databases reuse ids) is never mistaken for the old one. Code that edits registry rows
directly through the ORM, outside those paths, must bump the version itself.

Snapshots are read-only after they are built and shared by all threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Q

from access.epoch import CURRENT_SQL as _EPOCH_SQL
from access.policy import PermissionRule, project_rules
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    OnDemandFeatureView,
    Project,
)
from serving.online import ViewKey

PLAN_CACHE_SIZE = 512  # resolved feature lists kept per snapshot (serving.features)


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: int
    name: str
    version: int
    updated_at: Any  # as the database driver returns it: only ever compared for equality

    @property
    def fingerprint(self) -> tuple[int, int, Any]:
        return (self.id, self.version, self.updated_at)


@dataclass(frozen=True, eq=False)
class GateTarget:
    """What access.policy decides on, without a model instance: the object's type,
    project, name and tags (policy reads exactly these attributes)."""

    resource_type: str
    name: str
    tags: dict[str, Any]
    project_id: int
    project: ProjectRef


@dataclass(frozen=True, eq=False)
class SourceMeta:
    """How rows of a view are named on the way in: the source's timestamp and created
    columns and its field mapping (source column -> feature or join key name). A push
    source without its own columns or mapping uses its batch source's, as Feast does."""

    name: str
    kind: str
    timestamp_field: str
    created_timestamp_column: str
    field_mapping: dict[str, str]
    path: str = ""  # the batch file (file sources): what the demo seeding reads


@dataclass(frozen=True, eq=False)
class FeatureViewMeta:
    gate: GateTarget
    name: str
    key: ViewKey
    join_keys: tuple[str, ...]  # the entities' join keys, in declared order
    join_key_dtypes: dict[str, str]  # "" when the entity declares no single value type
    features: dict[str, str]  # feature name -> dtype, in schema order
    ttl: timedelta | None  # None: unlimited
    source: SourceMeta  # what the view is fed from (a push source, or its batch source)
    batch_source: SourceMeta


@dataclass(frozen=True, eq=False)
class OnDemandViewMeta:
    gate: GateTarget
    name: str
    mode: str  # "expression" | "python"
    expressions: dict[str, str]
    function: str
    outputs: dict[str, str]  # output name -> dtype
    sources: tuple[str, ...]  # feature view names
    request_fields: dict[str, str]  # request-source field -> dtype


@dataclass(frozen=True, eq=False)
class ProjectionMeta:
    view: str
    on_demand: bool
    features: tuple[str, ...]  # resolved: all of the view's when the service lists none
    alias: str

    @property
    def name_to_use(self) -> str:
        return self.alias or self.view


@dataclass(frozen=True, eq=False)
class FeatureServiceMeta:
    gate: GateTarget
    name: str
    projections: tuple[ProjectionMeta, ...]


@dataclass(frozen=True, eq=False)
class PushSourceMeta:
    gate: GateTarget
    name: str
    views: tuple[str, ...]  # the feature views this push source feeds


@dataclass(eq=False)
class RegistrySnapshot:
    project: ProjectRef
    feature_views: dict[str, FeatureViewMeta] = field(default_factory=dict)
    on_demand_views: dict[str, OnDemandViewMeta] = field(default_factory=dict)
    services: dict[str, FeatureServiceMeta] = field(default_factory=dict)
    push_sources: dict[str, PushSourceMeta] = field(default_factory=dict)
    data_sources: dict[str, GateTarget] = field(default_factory=dict)
    # Resolved requests (serving.features.resolve); bounded, safe to share: plans are immutable.
    plans: dict[Any, Any] = field(default_factory=dict)

    def remember_plan(self, key: Any, plan: Any) -> None:
        if len(self.plans) >= PLAN_CACHE_SIZE:
            self.plans.clear()
        self.plans[key] = plan


_lock = threading.Lock()
_snapshots: dict[int, RegistrySnapshot] = {}


_PROJECT_TABLE = Project._meta.db_table
# Raw SQL on the hot path: the ORM would cost more to compile the statement than to run it.
# The one query of every serving request: the project's version and the access epoch together.
_BY_NAME_WITH_EPOCH = f"SELECT id, version, updated_at, ({_EPOCH_SQL}) FROM {_PROJECT_TABLE} WHERE name = %s"  # noqa: S608
_FIRST_TWO_WITH_EPOCH = (
    f"SELECT id, name, version, updated_at, ({_EPOCH_SQL}) FROM {_PROJECT_TABLE} ORDER BY id LIMIT 2"  # noqa: S608
)
_BY_NAME_WITH_EPOCH_QMARK = _BY_NAME_WITH_EPOCH.replace("%s", "?")
_permission_rules: dict[int, tuple[Any, tuple[PermissionRule, ...]]] = {}


def locate(name: str | None, *, on_driver: bool = True) -> tuple[ProjectRef | None, int]:
    """The named project (or the only one, for no name) and the access epoch, in one
    round trip; (None, epoch) when there is no such project.

    `on_driver`: on the driver's own connection, as the fast path runs it (Django's
    cursor wrapper adds a third to the cost of this one-row query); otherwise through
    Django's cursor, so the DRF views' query stays visible to query logging and counts."""
    if on_driver:
        connection.ensure_connection()
        raw = connection.connection
        qmark = connection.vendor == "sqlite"
        if name:
            rows = raw.execute(_BY_NAME_WITH_EPOCH_QMARK if qmark else _BY_NAME_WITH_EPOCH, [name]).fetchall()
        else:
            rows = raw.execute(_FIRST_TWO_WITH_EPOCH).fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(*((_BY_NAME_WITH_EPOCH, [name]) if name else (_FIRST_TWO_WITH_EPOCH,)))
            rows = cursor.fetchall()
    if name:
        return (ProjectRef(rows[0][0], name, rows[0][1], rows[0][2]), rows[0][3] or 0) if rows else (None, 0)
    if len(rows) != 1:
        return None, 0
    row = rows[0]
    return ProjectRef(row[0], row[1], row[2], row[3]), row[4] or 0


def permission_rules(project: ProjectRef, epoch: int) -> tuple[PermissionRule, ...]:
    """The project's permissions, cached until the project's version or the access epoch
    moves (an apply, an admin or API edit, any Permission saved or deleted). Both were
    read before the rules: at worst one extra reload, never stale rules."""
    key = (project.fingerprint, epoch)
    cached = _permission_rules.get(project.id)
    if cached is not None and cached[0] == key:
        return cached[1]
    rules = project_rules(project.id)
    _permission_rules[project.id] = (key, rules)
    return rules


def project_ref(name: str) -> ProjectRef | None:
    """The project's identity and version (locate, through Django's cursor)."""
    return locate(name, on_driver=False)[0]


def only_project() -> ProjectRef | None:
    """The project, when exactly one exists (a request that names none means it)."""
    return locate(None, on_driver=False)[0]


def snapshot(project: ProjectRef) -> RegistrySnapshot:
    """The cached snapshot of `project`, rebuilt when its version moved."""
    cached = _snapshots.get(project.id)
    if cached is not None and cached.project.fingerprint == project.fingerprint:
        return cached
    with _lock:
        cached = _snapshots.get(project.id)
        if cached is not None and cached.project.fingerprint == project.fingerprint:
            return cached
        # The rows are read after the version: they are at least as new as it, so the
        # worst case is one extra rebuild, never a stale snapshot under a newer version.
        built = build_snapshot(project)
        _snapshots[project.id] = built
        return built


def empty_snapshot(name: str) -> RegistrySnapshot:
    """A project that does not exist: nothing in it (not cached)."""
    return RegistrySnapshot(ProjectRef(0, name, -1, None))


def clear() -> None:
    """Forget every snapshot (tests that rewrite the registry behind apply's back)."""
    with _lock:
        _snapshots.clear()
        _permission_rules.clear()


def _gate(rtype: str, row: dict[str, Any], project: ProjectRef) -> GateTarget:
    return GateTarget(rtype, row["name"], row.get("tags") or {}, project.id, project)


def build_snapshot(project: ProjectRef) -> RegistrySnapshot:
    """Read the project's serving metadata in a fixed number of queries."""
    pid = project.id
    snap = RegistrySnapshot(project)

    entities = {
        row["id"]: row for row in Entity.objects.filter(project_id=pid).values("id", "name", "join_keys", "value_type")
    }
    sources = {
        row["id"]: row
        for row in DataSource.objects.filter(project_id=pid).values(
            "id",
            "name",
            "kind",
            "tags",
            "timestamp_field",
            "created_timestamp_column",
            "field_mapping",
            "path",
            "batch_source_id",
            "schema",
        )
    }
    snap.data_sources = {row["name"]: _gate("data_source", row, project) for row in sources.values()}
    view_entities: dict[int, list[int]] = {}
    for view_id, entity_id in (
        FeatureView.entities.through.objects.filter(featureview__project_id=pid)
        .order_by("id")
        .values_list("featureview_id", "entity_id")
    ):
        view_entities.setdefault(view_id, []).append(entity_id)
    view_fields: dict[int, dict[str, str]] = {}
    odfv_fields: dict[int, dict[str, str]] = {}
    for view_id, odfv_id, name, dtype in (
        Field.objects.filter(Q(feature_view__project_id=pid) | Q(on_demand_feature_view__project_id=pid))
        .order_by("position", "name")
        .values_list("feature_view_id", "on_demand_feature_view_id", "name", "dtype")
    ):
        target = view_fields.setdefault(view_id, {}) if view_id else odfv_fields.setdefault(odfv_id, {})
        target[name] = dtype

    def source_meta(source_id: int) -> SourceMeta:
        row = sources[source_id]
        batch = sources.get(row["batch_source_id"]) if row["batch_source_id"] else None
        fallback = batch or {}
        return SourceMeta(
            name=row["name"],
            kind=row["kind"],
            timestamp_field=row["timestamp_field"] or fallback.get("timestamp_field", ""),
            created_timestamp_column=row["created_timestamp_column"] or fallback.get("created_timestamp_column", ""),
            field_mapping=dict(row["field_mapping"] or fallback.get("field_mapping") or {}),
            path=row["path"] or fallback.get("path", ""),
        )

    views_by_id: dict[int, str] = {}
    fed_by: dict[int, list[str]] = {}
    view_rows = FeatureView.objects.filter(project_id=pid).order_by("name")
    for row in view_rows.values("id", "name", "tags", "ttl", "source_id"):
        join_keys: list[str] = []
        dtypes: dict[str, str] = {}
        for entity_id in view_entities.get(row["id"], []):
            entity = entities[entity_id]
            keys = list(entity["join_keys"] or [])
            for key in keys:
                if key not in dtypes:
                    join_keys.append(key)
                    dtypes[key] = entity["value_type"] if len(keys) == 1 else ""
        source = source_meta(row["source_id"])
        batch_id = sources[row["source_id"]]["batch_source_id"]
        meta = FeatureViewMeta(
            gate=_gate("feature_view", row, project),
            name=row["name"],
            key=ViewKey(project.name, row["name"], tuple(join_keys)),
            join_keys=tuple(join_keys),
            join_key_dtypes=dtypes,
            features=view_fields.get(row["id"], {}),
            ttl=row["ttl"] if row["ttl"] and row["ttl"] > timedelta(0) else None,
            source=source,
            batch_source=source_meta(batch_id) if source.kind == "push" and batch_id else source,
        )
        snap.feature_views[meta.name] = meta
        views_by_id[row["id"]] = meta.name
        if source.kind == "push":
            fed_by.setdefault(row["source_id"], []).append(meta.name)

    for source_id, row in sources.items():
        if row["kind"] == "push":
            snap.push_sources[row["name"]] = PushSourceMeta(
                _gate("data_source", row, project), row["name"], tuple(fed_by.get(source_id, []))
            )

    odfv_sources: dict[int, list[str]] = {}
    for odfv_id, view_id in (
        OnDemandFeatureView.sources.through.objects.filter(ondemandfeatureview__project_id=pid)
        .order_by("id")
        .values_list("ondemandfeatureview_id", "featureview_id")
    ):
        odfv_sources.setdefault(odfv_id, []).append(views_by_id[view_id])
    odfv_requests: dict[int, dict[str, str]] = {}
    for odfv_id, source_id in (
        OnDemandFeatureView.request_sources.through.objects.filter(ondemandfeatureview__project_id=pid)
        .order_by("id")
        .values_list("ondemandfeatureview_id", "datasource_id")
    ):
        for item in sources[source_id]["schema"] or []:
            odfv_requests.setdefault(odfv_id, {})[item["name"]] = item.get("dtype", "")
    odfvs_by_id: dict[int, str] = {}
    for row in OnDemandFeatureView.objects.filter(project_id=pid).values(
        "id", "name", "tags", "mode", "expressions", "function"
    ):
        snap.on_demand_views[row["name"]] = OnDemandViewMeta(
            gate=_gate("on_demand_feature_view", row, project),
            name=row["name"],
            mode=row["mode"],
            expressions=dict(row["expressions"] or {}),
            function=row["function"],
            outputs=odfv_fields.get(row["id"], {}),
            sources=tuple(odfv_sources.get(row["id"], [])),
            request_fields=odfv_requests.get(row["id"], {}),
        )
        odfvs_by_id[row["id"]] = row["name"]

    projections: dict[int, list[ProjectionMeta]] = {}
    for service_id, view_id, odfv_id, features, alias in (
        FeatureViewProjection.objects.filter(feature_service__project_id=pid)
        .order_by("position", "id")
        .values_list("feature_service_id", "feature_view_id", "on_demand_feature_view_id", "features", "alias")
    ):
        if view_id:
            name, on_demand = views_by_id[view_id], False
            every = snap.feature_views[name].features
        else:
            name, on_demand = odfvs_by_id[odfv_id], True
            every = snap.on_demand_views[name].outputs
        chosen = tuple(features) if features else tuple(every)
        projections.setdefault(service_id, []).append(ProjectionMeta(name, on_demand, chosen, alias or ""))
    for row in FeatureService.objects.filter(project_id=pid).values("id", "name", "tags"):
        snap.services[row["name"]] = FeatureServiceMeta(
            _gate("feature_service", row, project), row["name"], tuple(projections.get(row["id"], []))
        )
    return snap
