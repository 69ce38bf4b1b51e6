"""Registry rows -> canonical dicts, the shape `normalize` gives YAML objects.

`canonical(obj)` serves one object (REST API, change history); `load_state(project)`
reads a whole project in a fixed, small number of queries (no N+1), keeping the
model instances beside their dicts so apply can update rows in place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from access.actions import ALL_ACTIONS, expand_actions
from access.models import Permission
from access.resources import RESOURCE_TYPES, normalize_resource_type
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

from .spec import (
    DATA_SOURCE,
    ENTITY,
    FEATURE_SERVICE,
    FEATURE_VIEW,
    OBJECT_TYPES,
    ON_DEMAND_FEATURE_VIEW,
    PERMISSION,
    PROJECT,
)

MODELS = {
    PROJECT: Project,
    ENTITY: Entity,
    DATA_SOURCE: DataSource,
    FEATURE_VIEW: FeatureView,
    ON_DEMAND_FEATURE_VIEW: OnDemandFeatureView,
    FEATURE_SERVICE: FeatureService,
    PERMISSION: Permission,
}


def _common(obj: Any) -> dict[str, Any]:
    return {"description": obj.description, "owner": obj.owner, "tags": dict(obj.tags or {})}


def field_dict(f: Any) -> dict[str, Any]:
    """A Field (or FieldRow) as {name, dtype, description, tags}."""
    return {"name": f.name, "dtype": f.dtype, "description": f.description, "tags": dict(f.tags or {})}


def project_dict(p: Project) -> dict[str, Any]:
    return {"name": p.name, **_common(p)}


def entity_dict(e: Entity) -> dict[str, Any]:
    return {"name": e.name, "join_keys": list(e.join_keys or []), "value_type": e.value_type, **_common(e)}


def data_source_dict(ds: DataSource, batch_source_name: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": ds.name, "kind": ds.kind}
    if ds.kind == "file":
        out["path"] = ds.path
    elif ds.kind == "postgres":
        out.update({"table": ds.table, "query": ds.query, "dsn_setting": ds.dsn_setting})
    elif ds.kind == "push":
        out["batch_source"] = batch_source_name
    elif ds.kind == "request":
        out["schema"] = [
            {
                "name": f.get("name", ""),
                "dtype": f.get("dtype", ""),
                "description": f.get("description", ""),
                "tags": dict(f.get("tags") or {}),
            }
            for f in ds.schema or []
        ]
    if ds.kind in ("file", "postgres"):
        out.update(
            {
                "timestamp_field": ds.timestamp_field,
                "created_timestamp_column": ds.created_timestamp_column,
                "field_mapping": dict(ds.field_mapping or {}),
            }
        )
    return {**out, **_common(ds)}


def feature_view_dict(
    fv: FeatureView,
    entity_names: Iterable[str],
    source_name: str,
    fields: Iterable[Field],
    schedule: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`schedule` is the view's repo-owned materialization schedule (materialization.schedules), if any."""
    out = {
        "name": fv.name,
        "entities": sorted(entity_names),
        "source": source_name,
        "ttl": int(fv.ttl.total_seconds()),
        "online": fv.online,
        "offline": fv.offline,
        "schema": [field_dict(f) for f in sorted(fields, key=lambda f: (f.position, f.name))],
        **_common(fv),
    }
    if schedule is not None:
        out["schedule"] = schedule
    return out


def on_demand_dict(odfv: OnDemandFeatureView, source_names: Iterable[str], fields: Iterable[Field]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": odfv.name,
        "sources": sorted(source_names),
        "mode": odfv.mode,
        "schema": [field_dict(f) for f in sorted(fields, key=lambda f: (f.position, f.name))],
    }
    if odfv.mode == "python":
        out["function"] = odfv.function
    else:
        out["expressions"] = dict(odfv.expressions or {})
    return {**out, **_common(odfv)}


def service_dict(fs: FeatureService, projections: Iterable[FeatureViewProjection], view_names: dict) -> dict[str, Any]:
    """`view_names` maps ("fv"|"odfv", id) to a name."""
    features = []
    for p in sorted(projections, key=lambda p: (p.position, p.pk or 0)):
        key = ("fv", p.feature_view_id) if p.feature_view_id else ("odfv", p.on_demand_feature_view_id)
        features.append({"feature_view": view_names.get(key, ""), "features": list(p.features or []), "alias": p.alias})
    return {"name": fs.name, "features": features, **_common(fs)}


def permission_dict(p: Permission) -> dict[str, Any]:
    types = set()
    for t in p.types or []:
        try:
            types.add(normalize_resource_type(t))
        except ValueError:
            types.add(str(t))
    try:
        actions = expand_actions(list(p.actions or []))
    except ValueError:
        actions = [a for a in ALL_ACTIONS if a in set(p.actions or [])]
    return {
        "name": p.name,
        "types": [t for t in RESOURCE_TYPES if t in types] + sorted(types - set(RESOURCE_TYPES)),
        "name_patterns": [str(x).strip() for x in p.name_patterns or []],
        "required_tags": {str(k): str(v) for k, v in (p.required_tags or {}).items()},
        "actions": actions,
        "roles": list(p.roles or []),
        "groups": list(p.groups or []),
        **_common(p),
    }


def canonical(obj: Any) -> dict[str, Any]:
    """The canonical dict of one registry object (same keys as the normalised YAML)."""
    rtype = getattr(obj, "resource_type", "")
    if rtype == PROJECT:
        return project_dict(obj)
    if rtype == ENTITY:
        return entity_dict(obj)
    if rtype == DATA_SOURCE:
        return data_source_dict(obj, obj.batch_source.name if obj.batch_source_id else "")
    if rtype == FEATURE_VIEW:
        from materialization.schedules import repo_schedules

        schedule = repo_schedules([obj.pk]).get(obj.pk)
        return feature_view_dict(obj, [e.name for e in obj.entities.all()], obj.source.name, obj.fields.all(), schedule)
    if rtype == ON_DEMAND_FEATURE_VIEW:
        names = [v.name for v in obj.sources.all()] + [s.name for s in obj.request_sources.all()]
        return on_demand_dict(obj, names, obj.fields.all())
    if rtype == FEATURE_SERVICE:
        projections = list(obj.projections.select_related("feature_view", "on_demand_feature_view"))
        names = {}
        for p in projections:
            if p.feature_view_id:
                names["fv", p.feature_view_id] = p.feature_view.name
            else:
                names["odfv", p.on_demand_feature_view_id] = p.on_demand_feature_view.name
        return service_dict(obj, projections, names)
    if rtype == PERMISSION:
        return permission_dict(obj)
    raise TypeError(f"{obj!r} is not an object managed by apply")


class FieldRow(NamedTuple):
    """A stored Field read as plain values: 10,000 of them load much faster than models."""

    pk: int
    name: str
    dtype: str
    description: str
    tags: dict
    position: int


@dataclass
class RegistryState:
    """One project as stored: model instances and canonical dicts by type and name,
    plus the child rows apply syncs in place (fields, projections)."""

    project: Project | None
    objects: dict[str, dict[str, Any]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    dicts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    fields: dict[tuple[str, int], list[Any]] = field(default_factory=dict)  # Field or FieldRow
    projections: dict[int, list[FeatureViewProjection]] = field(default_factory=dict)

    def put(self, object_type: str, obj: Any, d: dict[str, Any]) -> None:
        self.objects[object_type][obj.name] = obj
        self.dicts[object_type][obj.name] = d


def load_state(project: Project | None) -> RegistryState:
    """Everything apply manages in `project`, read in about a dozen queries (unordered:
    the models' default ordering would join the project table for nothing)."""
    state = RegistryState(project)
    if project is None or project.pk is None:
        return state
    state.put(PROJECT, project, project_dict(project))
    for e in Entity.objects.filter(project=project).order_by():
        state.put(ENTITY, e, entity_dict(e))
    sources = list(DataSource.objects.filter(project=project).order_by())
    source_names = {s.pk: s.name for s in sources}
    for s in sources:
        state.put(DATA_SOURCE, s, data_source_dict(s, source_names.get(s.batch_source_id, "")))

    entity_names = {e.pk: e.name for e in state.objects[ENTITY].values()}
    fv_entities: dict[int, list[str]] = defaultdict(list)
    through = FeatureView.entities.through.objects.filter(featureview__project=project)
    for fv_id, entity_id in through.values_list("featureview_id", "entity_id"):
        fv_entities[fv_id].append(entity_names.get(entity_id, ""))
    view_fields: dict[int, list[Any]] = defaultdict(list)
    odfv_fields: dict[int, list[Any]] = defaultdict(list)
    columns = ("pk", "name", "dtype", "description", "tags", "position")
    for row in Field.objects.filter(feature_view__project=project).order_by().values_list("feature_view_id", *columns):
        view_fields[row[0]].append(FieldRow(*row[1:]))
    for row in (
        Field.objects.filter(on_demand_feature_view__project=project)
        .order_by()
        .values_list("on_demand_feature_view_id", *columns)
    ):
        odfv_fields[row[0]].append(FieldRow(*row[1:]))
    view_names: dict[tuple[str, int], str] = {}
    views = list(FeatureView.objects.filter(project=project).order_by())
    from materialization.schedules import repo_schedules

    schedules = repo_schedules(project=project)
    for fv in views:
        state.put(
            FEATURE_VIEW,
            fv,
            feature_view_dict(
                fv, fv_entities[fv.pk], source_names.get(fv.source_id, ""), view_fields[fv.pk], schedules.get(fv.pk)
            ),
        )
        state.fields["fv", fv.pk] = view_fields[fv.pk]
        view_names["fv", fv.pk] = fv.name

    odfv_sources: dict[int, list[str]] = defaultdict(list)
    fv_by_id = {fv.pk: fv.name for fv in state.objects[FEATURE_VIEW].values()}
    for odfv_id, fv_id in OnDemandFeatureView.sources.through.objects.filter(
        ondemandfeatureview__project=project
    ).values_list("ondemandfeatureview_id", "featureview_id"):
        odfv_sources[odfv_id].append(fv_by_id.get(fv_id, ""))
    for odfv_id, ds_id in OnDemandFeatureView.request_sources.through.objects.filter(
        ondemandfeatureview__project=project
    ).values_list("ondemandfeatureview_id", "datasource_id"):
        odfv_sources[odfv_id].append(source_names.get(ds_id, ""))
    for odfv in OnDemandFeatureView.objects.filter(project=project).order_by():
        state.put(ON_DEMAND_FEATURE_VIEW, odfv, on_demand_dict(odfv, odfv_sources[odfv.pk], odfv_fields[odfv.pk]))
        state.fields["odfv", odfv.pk] = odfv_fields[odfv.pk]
        view_names["odfv", odfv.pk] = odfv.name

    projections: dict[int, list[FeatureViewProjection]] = defaultdict(list)
    for p in FeatureViewProjection.objects.filter(feature_service__project=project).order_by():
        projections[p.feature_service_id].append(p)
    for fs in FeatureService.objects.filter(project=project).order_by():
        state.put(FEATURE_SERVICE, fs, service_dict(fs, projections[fs.pk], view_names))
        state.projections[fs.pk] = sorted(projections[fs.pk], key=lambda p: (p.position, p.pk))
    for p in Permission.objects.filter(project=project).order_by():
        state.put(PERMISSION, p, permission_dict(p))
    return state
