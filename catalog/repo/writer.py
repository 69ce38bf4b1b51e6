"""Carrying out a plan on the database, in place and in bulk.

Updates modify the existing rows (never delete + recreate), so created_at,
MaterializationInterval rows and foreign keys pointing at an object survive a
re-apply; a view's Fields are synced by name. Creations of one type are inserted
with bulk_create. Runs inside the caller's transaction.
"""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import groupby
from typing import Any

from django.db.models import ProtectedError
from django.db.models.deletion import RestrictedError
from django.utils import timezone

from catalog.models import (
    DataSource,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    OnDemandFeatureView,
    Project,
)
from materialization.schedules import set_repo_schedule

from .canonical import MODELS, RegistryState
from .diff import CREATE, DELETE, UPDATE, Change, Plan
from .errors import RepoValidationError
from .spec import (
    DATA_SOURCE,
    ENTITY,
    FEATURE_SERVICE,
    FEATURE_VIEW,
    ON_DEMAND_FEATURE_VIEW,
    PERMISSION,
    PROJECT,
)

COMMON = ("description", "owner", "tags")
SCALARS = {
    PROJECT: COMMON,
    ENTITY: ("join_keys", "value_type", *COMMON),
    PERMISSION: ("types", "name_patterns", "required_tags", "actions", "roles", "groups", *COMMON),
    FEATURE_SERVICE: COMMON,
    FEATURE_VIEW: ("online", "offline", *COMMON),
    ON_DEMAND_FEATURE_VIEW: ("mode", *COMMON),
}
SOURCE_DEFAULTS: dict[str, Any] = {
    "timestamp_field": "",
    "created_timestamp_column": "",
    "field_mapping": {},
    "path": "",
    "table": "",
    "query": "",
    "dsn_setting": "",
    "schema": [],
}


# Columns (attnames) an in-place update may write, per type.
UPDATE_COLUMNS = {
    **{t: [*fields] for t, fields in SCALARS.items()},
    DATA_SOURCE: ["kind", *SOURCE_DEFAULTS, "batch_source_id", *COMMON],
}
UPDATE_COLUMNS[FEATURE_VIEW] += ["ttl", "source_id"]
UPDATE_COLUMNS[ON_DEMAND_FEATURE_VIEW] += ["expressions", "function"]


def grouped_update(model: Any, updates: list[tuple[int, dict[str, Any]]]) -> None:
    """UPDATE rows in as few queries as possible: rows getting the same values share one
    `UPDATE ... WHERE id IN (...)` (Django's bulk_update builds a CASE per row and
    column, which is far slower for the typical "same change to many rows")."""
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for pk, values in updates:
        key = json.dumps(sorted(values.items()), default=str)
        groups.setdefault(key, (values, []))[1].append(pk)
    for values, pks in groups.values():
        model.objects.filter(pk__in=pks).update(**values)


class Writer:
    """Applies the changes of one project, keeping `state` (name -> row) current so
    later changes resolve references to rows created earlier in the same apply."""

    def __init__(self, project: Project, state: RegistryState):
        self.project = project
        self.state = state
        self.now = timezone.now()
        self._dirty: list[tuple[int, dict[str, Any]]] = []
        self._fields_gone: list[int] = []
        self._fields_changed: list[tuple[int, dict[str, Any]]] = []
        self._fields_created: list[Field] = []

    def run(self, plan: Plan) -> None:
        def key(c: Change) -> tuple[str, str, bool]:
            d = c.new if c.new is not None else c.old
            return c.object_type, c.action, bool(d and d.get("kind") == "push")

        for (object_type, action, _), group in groupby(plan.changes, key=key):
            changes = list(group)
            if action == CREATE:
                self.create(object_type, changes)
            elif action == UPDATE:
                for change in changes:
                    self.update(object_type, change)
                self.flush_updates(object_type)
            elif action == DELETE:
                self.delete(object_type, changes)

    # -- helpers -------------------------------------------------------------------

    def row(self, object_type: str, name: str) -> Any:
        return self.state.objects[object_type][name]

    def _set_scalars(self, obj: Any, object_type: str, d: dict[str, Any]) -> None:
        for attr in SCALARS.get(object_type, ()):
            setattr(obj, attr, d[attr])
        if object_type == FEATURE_VIEW:
            obj.ttl = timedelta(seconds=d["ttl"])
            obj.source = self.row(DATA_SOURCE, d["source"])
        elif object_type == ON_DEMAND_FEATURE_VIEW:
            obj.expressions = d.get("expressions", {})
            obj.function = d.get("function", "")
        elif object_type == DATA_SOURCE:
            obj.kind = d["kind"]
            for attr, default in SOURCE_DEFAULTS.items():
                setattr(obj, attr, d.get(attr, default))
            obj.batch_source = self.row(DATA_SOURCE, d["batch_source"]) if d.get("batch_source") else None
            for attr in COMMON:
                setattr(obj, attr, d[attr])

    def _new(self, object_type: str, d: dict[str, Any]) -> Any:
        obj = MODELS[object_type](project=self.project, name=d["name"])
        self._set_scalars(obj, object_type, d)
        return obj

    @staticmethod
    def _field_rows(d: dict[str, Any], **owner: Any) -> list[Field]:
        return [
            Field(name=f["name"], dtype=f["dtype"], description=f["description"], tags=f["tags"], position=i, **owner)
            for i, f in enumerate(d["schema"])
        ]

    def _split_sources(self, names: list[str]) -> tuple[list[FeatureView], list[DataSource]]:
        views, sources = self.state.objects[FEATURE_VIEW], self.state.objects[DATA_SOURCE]
        fvs = [views[n] for n in names if n in views]
        requests = [sources[n] for n in names if n not in views]
        return fvs, requests

    def _view_of(self, name: str) -> dict[str, Any]:
        if name in self.state.objects[FEATURE_VIEW]:
            return {"feature_view": self.row(FEATURE_VIEW, name), "on_demand_feature_view": None}
        return {"feature_view": None, "on_demand_feature_view": self.row(ON_DEMAND_FEATURE_VIEW, name)}

    # -- create --------------------------------------------------------------------

    def create(self, object_type: str, changes: list[Change]) -> None:
        if object_type == PROJECT:
            return  # apply creates (and locks) the project row before planning
        rows = MODELS[object_type].objects.bulk_create([self._new(object_type, c.new) for c in changes])
        for row, change in zip(rows, changes, strict=True):
            self.state.put(object_type, row, change.new)
        if object_type == FEATURE_VIEW:
            through = FeatureView.entities.through
            entities = self.state.objects[ENTITY]
            through.objects.bulk_create(
                [
                    through(featureview_id=r.pk, entity_id=entities[e].pk)
                    for r, c in zip(rows, changes, strict=True)
                    for e in c.new["entities"]
                ]
            )
            fields = [f for r, c in zip(rows, changes, strict=True) for f in self._field_rows(c.new, feature_view=r)]
            Field.objects.bulk_create(fields)
            self._remember_fields("fv", rows, fields, "feature_view_id")
            for r, c in zip(rows, changes, strict=True):
                if c.new.get("schedule") is not None:
                    set_repo_schedule(r, c.new["schedule"])
        elif object_type == ON_DEMAND_FEATURE_VIEW:
            fv_through, ds_through = OnDemandFeatureView.sources.through, OnDemandFeatureView.request_sources.through
            fv_links, ds_links, fields = [], [], []
            for r, c in zip(rows, changes, strict=True):
                fvs, requests = self._split_sources(c.new["sources"])
                fv_links += [fv_through(ondemandfeatureview_id=r.pk, featureview_id=v.pk) for v in fvs]
                ds_links += [ds_through(ondemandfeatureview_id=r.pk, datasource_id=s.pk) for s in requests]
                fields += self._field_rows(c.new, on_demand_feature_view=r)
            fv_through.objects.bulk_create(fv_links)
            ds_through.objects.bulk_create(ds_links)
            Field.objects.bulk_create(fields)
            self._remember_fields("odfv", rows, fields, "on_demand_feature_view_id")
        elif object_type == FEATURE_SERVICE:
            projections = [
                FeatureViewProjection(
                    feature_service=r,
                    features=p["features"],
                    alias=p["alias"],
                    position=i,
                    **self._view_of(p["feature_view"]),
                )
                for r, c in zip(rows, changes, strict=True)
                for i, p in enumerate(c.new["features"])
            ]
            FeatureViewProjection.objects.bulk_create(projections)
            for r in rows:
                self.state.projections[r.pk] = []
            for p in projections:
                self.state.projections[p.feature_service_id].append(p)

    def _remember_fields(self, kind: str, rows: list[Any], fields: list[Field], attr: str) -> None:
        for r in rows:
            self.state.fields[kind, r.pk] = []
        for f in fields:
            self.state.fields[kind, getattr(f, attr)].append(f)

    # -- update --------------------------------------------------------------------

    def update(self, object_type: str, change: Change) -> None:
        obj = self.row(object_type, change.name)
        d = change.new
        columns = UPDATE_COLUMNS[object_type]
        before = [getattr(obj, c) for c in columns]
        self._set_scalars(obj, object_type, d)
        changed = {c: getattr(obj, c) for c, old in zip(columns, before, strict=True) if getattr(obj, c) != old}
        self._dirty.append((obj.pk, {**changed, "updated_at": self.now}))
        if object_type == FEATURE_VIEW:
            if "entities" in change.diff:
                obj.entities.set([self.row(ENTITY, e) for e in d["entities"]])
            if "schema" in change.diff:
                self._sync_fields(("fv", obj.pk), d, feature_view=obj)
            if "schedule" in change.diff:
                set_repo_schedule(obj, d.get("schedule"))
        elif object_type == ON_DEMAND_FEATURE_VIEW:
            if "sources" in change.diff:
                fvs, requests = self._split_sources(d["sources"])
                obj.sources.set(fvs)
                obj.request_sources.set(requests)
            if "schema" in change.diff:
                self._sync_fields(("odfv", obj.pk), d, on_demand_feature_view=obj)
        elif object_type == FEATURE_SERVICE and "features" in change.diff:
            self._sync_projections(obj, d)
        self.state.dicts[object_type][change.name] = d

    def _sync_fields(self, key: tuple[str, int], d: dict[str, Any], **owner: Any) -> None:
        """Fields matched by name: changed ones updated in place, new ones created, gone ones deleted."""
        existing = {f.name: f for f in self.state.fields.get(key, [])}
        wanted = {f["name"] for f in d["schema"]}
        self._fields_gone += [f.pk for name, f in existing.items() if name not in wanted]
        kept = []
        for i, spec in enumerate(d["schema"]):
            values = {"dtype": spec["dtype"], "description": spec["description"], "tags": spec["tags"], "position": i}
            f = existing.get(spec["name"])
            if f is None:
                f = Field(name=spec["name"], **values, **owner)
                self._fields_created.append(f)
            elif any(getattr(f, k) != v for k, v in values.items()):
                self._fields_changed.append((f.pk, {k: v for k, v in values.items() if getattr(f, k) != v}))
                f = Field(pk=f.pk, name=f.name, **values, **owner)
            kept.append(f)
        self.state.fields[key] = kept

    def flush_updates(self, object_type: str) -> None:
        """Write the rows and fields changed by a run of updates, in a few bulk queries."""
        grouped_update(MODELS[object_type], self._dirty)
        if self._fields_gone:
            Field.objects.filter(pk__in=self._fields_gone).delete()
        grouped_update(Field, self._fields_changed)
        if self._fields_created:
            Field.objects.bulk_create(self._fields_created)
        self._dirty, self._fields_gone, self._fields_changed, self._fields_created = [], [], [], []

    def _sync_projections(self, service: FeatureService, d: dict[str, Any]) -> None:
        existing = list(self.state.projections.get(service.pk, []))
        kept, changed, created = [], [], []
        for i, spec in enumerate(d["features"]):
            values = {
                "features": spec["features"],
                "alias": spec["alias"],
                "position": i,
                **self._view_of(spec["feature_view"]),
            }
            if i < len(existing):
                p = existing[i]
                for k, v in values.items():
                    setattr(p, k, v)
                changed.append(p)
            else:
                p = FeatureViewProjection(feature_service=service, **values)
                created.append(p)
            kept.append(p)
        surplus = [p.pk for p in existing[len(d["features"]) :]]
        if surplus:
            FeatureViewProjection.objects.filter(pk__in=surplus).delete()
        if changed:
            FeatureViewProjection.objects.bulk_update(
                changed, ["feature_view", "on_demand_feature_view", "features", "alias", "position"]
            )
        if created:
            FeatureViewProjection.objects.bulk_create(created)
        self.state.projections[service.pk] = kept

    # -- delete --------------------------------------------------------------------

    def delete(self, object_type: str, changes: list[Change]) -> None:
        rows = [self.state.objects[object_type].pop(c.name) for c in changes]
        for c in changes:
            self.state.dicts[object_type].pop(c.name, None)
        try:
            MODELS[object_type].objects.filter(pk__in=[r.pk for r in rows]).delete()
        except (ProtectedError, RestrictedError) as exc:
            found = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
            blockers = sorted({f"{type(o).__name__} {o}" for o in found})
            raise RepoValidationError.single(
                f"cannot delete {object_type} {', '.join(c.name for c in changes)}: still used by "
                f"{', '.join(blockers[:5])}{'...' if len(blockers) > 5 else ''}",
                object_type=object_type,
                object_name=changes[0].name if len(changes) == 1 else "",
            ) from exc
