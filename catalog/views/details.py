"""Detail pages, one per registry type, plus features (one Field) and projects.

Each loads its object with the joins its template needs, then asks the gate:
an object the viewer may not DESCRIBE answers 404, exactly like a missing one (no
hint that it exists). Related objects shown on the page (entities, sources, services,
on-demand views...) are filtered to those the viewer may DESCRIBE, through the
restricted lineage graph every page builds anyway (catalog.lineage).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.db.models import Model, Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from access.actions import Action
from access.explain import applies_to
from access.policy import is_allowed, restrict
from catalog.lineage import build_project_graph, node_key_for
from catalog.models import (
    FeatureView,
    FeatureViewProjection,
    Field,
    Project,
    SavedDataset,
)

from . import curl, definition, panels, types
from .freshness import view_freshness
from .types import PageType

INTERVALS_SHOWN = 20


def get_visible(request: HttpRequest, page: PageType, project: str, name: str, select=(), prefetch=()) -> Any:
    """The object, if it exists and the viewer may DESCRIBE it; 404 otherwise (the same
    404 either way, so the page does not reveal hidden objects)."""
    queryset = page.model.objects.select_related("project", *select).prefetch_related(*prefetch)
    obj = queryset.filter(project__name=project, name=name).first()
    if obj is None or not is_allowed(request.user, Action.DESCRIBE, obj):
        raise Http404(f"No {page.singular} {name!r} in project {project!r} that you may see.")
    return obj


def _render(request: HttpRequest, template: str, page: PageType, obj: Any, extra: dict[str, Any]) -> HttpResponse:
    graph = extra.pop("graph", None) or build_project_graph(obj.project, request.user)
    context = panels.common_context(request.user, obj, graph, node_key_for(obj))
    context.update({"page_type": page, **extra})
    return render(request, template, context)


def _visible_objects(objs, names: set[str]) -> list:
    return [o for o in objs if o.name in names]


# ------------------------------------------------------------------------- types


def entity_detail(request: HttpRequest, project: str, name: str) -> HttpResponse:
    entity = get_visible(request, types.ENTITY, project, name)
    graph = build_project_graph(entity.project, request.user)
    seen = panels.visible_names(graph)
    views = FeatureView.objects.filter(entities=entity, name__in=seen.get("feature_view", set())).order_by("name")
    return _render(request, "catalog/detail/entity.html", types.ENTITY, entity, {"graph": graph, "views": views})


def data_source_detail(request: HttpRequest, project: str, name: str) -> HttpResponse:
    source = get_visible(request, types.DATA_SOURCE, project, name, select=("batch_source",))
    graph = build_project_graph(source.project, request.user)
    seen = panels.visible_names(graph)
    views = FeatureView.objects.filter(project=source.project, name__in=seen.get("feature_view", set()))
    extra = {
        "graph": graph,
        "views": views.filter(source=source).order_by("name"),
        "odfvs": source.on_demand_views.filter(name__in=seen.get("on_demand_feature_view", set())).order_by("name"),
        "push_sources": source.push_sources.filter(name__in=seen.get("data_source", set())).order_by("name"),
        "batch_source_visible": bool(source.batch_source_id)
        and source.batch_source.name in seen.get("data_source", set()),
        "views_through_push": views.filter(source__batch_source=source).order_by("name"),
    }
    return _render(request, "catalog/detail/data_source.html", types.DATA_SOURCE, source, extra)


def feature_view_detail(request: HttpRequest, project: str, name: str) -> HttpResponse:
    view = get_visible(
        request,
        types.FEATURE_VIEW,
        project,
        name,
        select=("source__batch_source",),
        prefetch=("fields", "entities"),
    )
    graph = build_project_graph(view.project, request.user)
    seen = panels.visible_names(graph)
    projections = [
        p
        for p in FeatureViewProjection.objects.filter(feature_view=view).select_related("feature_service")
        if p.feature_service.name in seen.get("feature_service", set())
    ]
    intervals = list(view.materialization_intervals.order_by("-end")[:INTERVALS_SHOWN])
    extra = {
        "graph": graph,
        "feature_view": view,
        "fields": list(view.fields.all()),
        "entities": [e for e in view.entities.all() if e.name in seen.get("entity", set())],
        "hidden_entities": sum(1 for e in view.entities.all() if e.name not in seen.get("entity", set())),
        "join_keys": [k for e in view.entities.all() for k in e.join_keys],
        "source_visible": view.source.name in seen.get("data_source", set()),
        "projections": sorted(projections, key=lambda p: p.feature_service.name),
        "odfvs": view.on_demand_views.filter(name__in=seen.get("on_demand_feature_view", set())).order_by("name"),
        "intervals": intervals,
        "last_job": last_job(view),
        "freshness": view_freshness(view, intervals[0].end if intervals else None),
        "curl": curl.for_feature_view(view),
    }
    return _render(request, "catalog/detail/feature_view.html", types.FEATURE_VIEW, view, extra)


def last_job(view: FeatureView) -> Any:
    """The view's newest materialization job, or None (one query; None when the
    materialization app is not installed)."""
    try:
        from materialization.models import MaterializationJob
    except ImportError:  # pragma: no cover - the app ships with Larder
        return None
    return MaterializationJob.objects.filter(feature_view=view).order_by("-created_at", "-id").first()


def on_demand_detail(request: HttpRequest, project: str, name: str) -> HttpResponse:
    odfv = get_visible(
        request,
        types.ON_DEMAND_FEATURE_VIEW,
        project,
        name,
        prefetch=(
            "fields",
            "request_sources",
            # the curl example needs each source view's entities and batch source
            Prefetch(
                "sources",
                queryset=FeatureView.objects.select_related("source__batch_source")
                .prefetch_related("entities")
                .order_by("name"),
            ),
        ),
    )
    odfv_sources = list(odfv.sources.all())
    graph = build_project_graph(odfv.project, request.user)
    seen = panels.visible_names(graph)
    projections = [
        p
        for p in FeatureViewProjection.objects.filter(on_demand_feature_view=odfv).select_related("feature_service")
        if p.feature_service.name in seen.get("feature_service", set())
    ]
    fields = list(odfv.fields.all())
    extra = {
        "graph": graph,
        "fields": fields,
        "expressions": [(f, (odfv.expressions or {}).get(f.name, "")) for f in fields],
        "source_views": [v for v in odfv_sources if v.name in seen.get("feature_view", set())],
        "request_sources": [s for s in odfv.request_sources.all() if s.name in seen.get("data_source", set())],
        "hidden_sources": sum(1 for v in odfv_sources if v.name not in seen.get("feature_view", set()))
        + sum(1 for s in odfv.request_sources.all() if s.name not in seen.get("data_source", set())),
        "projections": sorted(projections, key=lambda p: p.feature_service.name),
        "curl": curl.for_on_demand_view(odfv),
    }
    return _render(request, "catalog/detail/on_demand_feature_view.html", types.ON_DEMAND_FEATURE_VIEW, odfv, extra)


def feature_service_detail(request: HttpRequest, project: str, name: str) -> HttpResponse:
    service = get_visible(request, types.FEATURE_SERVICE, project, name)
    projections = list(
        service.projections.select_related("feature_view__source__batch_source", "on_demand_feature_view")
        .prefetch_related(
            "feature_view__fields",
            "feature_view__entities",
            "on_demand_feature_view__fields",
            "on_demand_feature_view__request_sources",
            Prefetch(
                "on_demand_feature_view__sources",
                queryset=FeatureView.objects.select_related("source__batch_source").prefetch_related("entities"),
            ),
        )
        .order_by("position", "pk")
    )
    graph = build_project_graph(service.project, request.user)
    seen = panels.visible_names(graph)
    rows, hidden = [], 0
    for p in projections:
        view = p.view
        rtype = "feature_view" if p.feature_view_id else "on_demand_feature_view"
        if view.name not in seen.get(rtype, set()):
            hidden += 1
            continue
        wanted = set(p.features or [])
        fields = [f for f in view.fields.all() if not wanted or f.name in wanted]
        rows.append({"projection": p, "view": view, "fields": fields, "subset": bool(wanted)})
    datasets = SavedDataset.objects.filter(feature_service=service, name__in=seen.get("saved_dataset", set()))
    extra = {
        "graph": graph,
        "rows": rows,
        "hidden_projections": hidden,
        "n_features": sum(len(r["fields"]) for r in rows),
        "datasets": datasets.order_by("name"),
        "curl": curl.for_feature_service(service, projections),
    }
    return _render(request, "catalog/detail/feature_service.html", types.FEATURE_SERVICE, service, extra)


def saved_dataset_detail(request: HttpRequest, project: str, name: str) -> HttpResponse:
    dataset = get_visible(request, types.SAVED_DATASET, project, name, select=("feature_service", "created_by"))
    graph = build_project_graph(dataset.project, request.user)
    seen = panels.visible_names(graph)
    views = {n: "feature-views" for n in seen.get("feature_view", set())}
    views.update({n: "on-demand-feature-views" for n in seen.get("on_demand_feature_view", set())})
    features = []
    for ref in dataset.features or []:
        view, _, feature = str(ref).partition(":")
        features.append(
            {"ref": ref, "view": view, "feature": feature, "kind": views.get(view), "hidden": view not in views}
        )
    extra = {
        "graph": graph,
        "features": features,
        "service_visible": bool(dataset.feature_service_id)
        and dataset.feature_service.name in seen.get("feature_service", set()),
        "request_json": definition.short_yaml(dataset.request) if dataset.request else "",
    }
    return _render(request, "catalog/detail/saved_dataset.html", types.SAVED_DATASET, dataset, extra)


# The types a permission can match, with their models, for "what it applies to".
MATCHABLE: list[tuple[PageType, type[Model]]] = [(t, t.model) for t in types.OBJECT_TYPES]


def permission_detail(request: HttpRequest, project: str, name: str) -> HttpResponse:
    permission = get_visible(request, types.PERMISSION, project, name)
    applies: list[dict[str, Any]] = []
    for page, model in MATCHABLE:
        if permission.types and page.resource_type not in permission.types:
            continue
        seen = restrict(model.objects.filter(project=permission.project), request.user, Action.DESCRIBE)
        objects = [o for o in seen.select_related("project").order_by("name") if applies_to(permission, o)]
        if objects:
            applies.append({"page": page, "objects": objects})
    project = permission.project
    if (
        (not permission.types or "project" in permission.types)
        and is_allowed(request.user, Action.DESCRIBE, project)
        and applies_to(permission, project)
    ):
        applies.insert(0, {"page": types.PROJECT, "objects": [project]})
    extra = {"applies": applies}
    return _render(request, "catalog/detail/permission.html", types.PERMISSION, permission, extra)


# ----------------------------------------------------------------------- features


def _expression_reads(expression: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", expression or "") is not None


def feature_detail(request: HttpRequest, project: str, view: str, feature: str) -> HttpResponse:
    """One feature of a feature view."""
    field = (
        Field.objects.select_related("feature_view__project", "feature_view__source")
        .filter(feature_view__project__name=project, feature_view__name=view, name=feature)
        .first()
    )
    if field is None or not is_allowed(request.user, Action.DESCRIBE, field.feature_view):
        raise Http404(f"No feature {view}:{feature} in project {project!r} that you may see.")
    parent = field.feature_view
    graph = build_project_graph(parent.project, request.user)
    seen = panels.visible_names(graph)
    services = [
        p
        for p in FeatureViewProjection.objects.filter(feature_view=parent).select_related("feature_service")
        if p.feature_service.name in seen.get("feature_service", set()) and (not p.features or feature in p.features)
    ]
    readers = []
    for odfv in parent.on_demand_views.filter(name__in=seen.get("on_demand_feature_view", set())).order_by("name"):
        if odfv.mode == "python" or any(_expression_reads(e, feature) for e in (odfv.expressions or {}).values()):
            readers.append(odfv)
    return _feature_page(request, field, parent, graph, services, readers, "feature-views")


def on_demand_feature_detail(request: HttpRequest, project: str, odfv: str, feature: str) -> HttpResponse:
    """One output of an on-demand view."""
    field = (
        Field.objects.select_related("on_demand_feature_view__project")
        .filter(on_demand_feature_view__project__name=project, on_demand_feature_view__name=odfv, name=feature)
        .first()
    )
    if field is None or not is_allowed(request.user, Action.DESCRIBE, field.on_demand_feature_view):
        raise Http404(f"No feature {odfv}:{feature} in project {project!r} that you may see.")
    parent = field.on_demand_feature_view
    graph = build_project_graph(parent.project, request.user)
    seen = panels.visible_names(graph)
    services = [
        p
        for p in FeatureViewProjection.objects.filter(on_demand_feature_view=parent).select_related("feature_service")
        if p.feature_service.name in seen.get("feature_service", set()) and (not p.features or feature in p.features)
    ]
    return _feature_page(request, field, parent, graph, services, [], "on-demand-feature-views")


def _feature_page(request, field, parent, graph, services, readers, parent_slug) -> HttpResponse:
    seen = panels.visible_names(graph)
    context = {
        "feature": field,
        "parent": parent,
        "parent_slug": parent_slug,
        "project": parent.project,
        "page_type": types.FEATURE,
        "services": sorted(services, key=lambda p: p.feature_service.name),
        "readers": readers,
        "expression": (parent.expressions or {}).get(field.name, "") if parent_slug != "feature-views" else "",
        "lineage": panels.lineage_panel(graph, node_key_for(parent)),
        "permissions_panel": panels.permissions_panel(request.user, parent),
        "definition_yaml": definition.to_yaml(
            parent.resource_type, {"name": parent.name, "schema": [_field_dict(field)]}
        ),
        "history": _feature_history(parent, field.name, seen),
    }
    return render(request, "catalog/detail/feature.html", context)


def _field_dict(field: Field) -> dict[str, Any]:
    return {"name": field.name, "dtype": field.dtype, "description": field.description, "tags": dict(field.tags or {})}


def _feature_history(parent: Any, name: str, seen: definition.Visible) -> list[definition.HistoryEntry]:
    """The parent view's changes that touched this feature (schema entries by name)."""
    entries = []
    for entry in definition.history(parent.project.name, parent.resource_type, parent.name, seen):
        if entry.action == "update":
            entry.fields = [f for f in entry.fields if f[0] == "schema" and name in f[1] + f[2]]
            if not entry.fields:
                continue
        elif name not in entry.definition:
            continue
        entries.append(entry)
    return entries


# ----------------------------------------------------------------------- projects


def project_detail(request: HttpRequest, project: str) -> HttpResponse:
    """A project: its documentation (with DESCRIBE on it) and what the viewer may see in it."""
    obj = Project.objects.filter(name=project).first()
    if obj is None:
        raise Http404(f"No project {project!r} that you may see.")
    describable = is_allowed(request.user, Action.DESCRIBE, obj)
    counts = []
    for page in types.OBJECT_TYPES:
        n = restrict(page.model.objects.filter(project=obj), request.user, Action.DESCRIBE).count()
        counts.append((page, n))
    features = restrict(Field.objects.all(), request.user, Action.DESCRIBE)
    n_features = (
        features.filter(feature_view__project=obj).count()
        + features.filter(on_demand_feature_view__project=obj).count()
    )
    if not describable and not any(n for _, n in counts):
        raise Http404(f"No project {project!r} that you may see.")
    graph = build_project_graph(obj, request.user)
    context = {
        "project": obj,
        "describable": describable,
        "counts": counts,
        "n_features": n_features,
        "page_type": types.PROJECT,
        "now": datetime.now(UTC),
    }
    if describable:
        context.update(panels.common_context(request.user, obj, graph))
    return render(request, "catalog/detail/project.html", context)
