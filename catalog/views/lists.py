"""List pages: one generic view, declared per type (queryset, filters, columns, row).

Every list starts from `restrict(queryset, user, DESCRIBE)`; filters, choices, counts
and related names shown in rows are computed from restricted querysets too, so a list
never names an object the viewer may not see. The number of queries per page is
fixed (joins and prefetches below), whatever the number of rows (tests assert it).

htmx: the filter form and the page links ask for `#results` only (HX-Request); the
same URL without htmx renders the whole page, so links and the back button work.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from access.actions import Action
from access.models import Permission
from access.policy import restrict
from catalog import filtersets
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    OnDemandFeatureView,
    SavedDataset,
)

from . import types
from .types import PageType

PAGE_SIZE = 25


@dataclass(frozen=True)
class Column:
    label: str
    sort: str = ""  # a FilterSet sort name, or "" when the column does not sort


@dataclass(frozen=True)
class ListSpec:
    page: PageType
    queryset: Callable[[object], QuerySet]  # user -> the restricted, joined queryset
    filterset: type[filtersets.FilterSet]
    columns: tuple[Column, ...]
    row_template: str


def visible(model, user) -> QuerySet:
    return restrict(model.objects.all(), user, Action.DESCRIBE)


def entities_queryset(user) -> QuerySet:
    seen_views = visible(FeatureView, user)
    return (
        visible(Entity, user)
        .select_related("project")
        .annotate(n_views=Count("feature_views", filter=Q(feature_views__in=seen_views), distinct=True))
    )


def data_sources_queryset(user) -> QuerySet:
    seen_views = visible(FeatureView, user)
    return (
        visible(DataSource, user)
        .select_related("project")
        .annotate(n_views=Count("feature_views", filter=Q(feature_views__in=seen_views), distinct=True))
    )


def feature_views_queryset(user) -> QuerySet:
    return (
        visible(FeatureView, user)
        .select_related("project", "source")
        .annotate(n_features=Count("fields", distinct=True))
        .prefetch_related(Prefetch("entities", queryset=visible(Entity, user).order_by("name")))
    )


def on_demand_queryset(user) -> QuerySet:
    return (
        visible(OnDemandFeatureView, user)
        .select_related("project")
        .annotate(n_features=Count("fields", distinct=True))
        .prefetch_related(Prefetch("sources", queryset=visible(FeatureView, user).order_by("name")))
    )


def feature_services_queryset(user) -> QuerySet:
    seen_views = visible(FeatureView, user)
    seen_odfvs = visible(OnDemandFeatureView, user)
    projections = FeatureViewProjection.objects.filter(
        Q(feature_view__in=seen_views) | Q(on_demand_feature_view__in=seen_odfvs)
    ).select_related("feature_view", "on_demand_feature_view")
    return (
        visible(FeatureService, user)
        .select_related("project")
        .prefetch_related(Prefetch("projections", queryset=projections, to_attr="visible_projections"))
    )


def saved_datasets_queryset(user) -> QuerySet:
    return visible(SavedDataset, user).select_related("project", "feature_service")


def permissions_queryset(user) -> QuerySet:
    return visible(Permission, user).select_related("project")


def features_queryset(user) -> QuerySet:
    return (
        restrict(Field.objects.all(), user, Action.DESCRIBE)
        .select_related("feature_view__project", "on_demand_feature_view__project")
        .annotate(
            parent_name=Coalesce(F("feature_view__name"), F("on_demand_feature_view__name")),
            parent_project=Coalesce(F("feature_view__project__name"), F("on_demand_feature_view__project__name")),
            parent_owner=Coalesce(F("feature_view__owner"), F("on_demand_feature_view__owner")),
        )
    )


NAME, PROJECT, OWNER, UPDATED = (
    Column("Name", "name"),
    Column("Project", "project"),
    Column("Owner", "owner"),
    Column("Updated", "updated"),
)

SPECS = {
    "entities": ListSpec(
        types.ENTITY,
        entities_queryset,
        filtersets.EntityFilterSet,
        (NAME, PROJECT, Column("Join keys"), Column("Value type"), Column("Feature views"), OWNER, UPDATED),
        "catalog/rows/entity.html",
    ),
    "data-sources": ListSpec(
        types.DATA_SOURCE,
        data_sources_queryset,
        filtersets.DataSourceFilterSet,
        (NAME, PROJECT, Column("Kind", "kind"), Column("Location"), Column("Feature views"), OWNER, UPDATED),
        "catalog/rows/data_source.html",
    ),
    "feature-views": ListSpec(
        types.FEATURE_VIEW,
        feature_views_queryset,
        filtersets.FeatureViewFilterSet,
        (
            NAME,
            PROJECT,
            Column("Entities"),
            Column("Features", "features"),
            Column("Source"),
            Column("TTL", "ttl"),
            Column("Stores"),
            OWNER,
            UPDATED,
        ),
        "catalog/rows/feature_view.html",
    ),
    "on-demand-feature-views": ListSpec(
        types.ON_DEMAND_FEATURE_VIEW,
        on_demand_queryset,
        filtersets.OnDemandFeatureViewFilterSet,
        (NAME, PROJECT, Column("Mode", "mode"), Column("Source views"), Column("Outputs"), OWNER, UPDATED),
        "catalog/rows/on_demand_feature_view.html",
    ),
    "feature-services": ListSpec(
        types.FEATURE_SERVICE,
        feature_services_queryset,
        filtersets.FeatureServiceFilterSet,
        (NAME, PROJECT, Column("Views"), Column("Tags"), OWNER, UPDATED),
        "catalog/rows/feature_service.html",
    ),
    "saved-datasets": ListSpec(
        types.SAVED_DATASET,
        saved_datasets_queryset,
        filtersets.SavedDatasetFilterSet,
        (NAME, PROJECT, Column("Feature service"), Column("Features"), Column("Storage"), Column("Created", "created")),
        "catalog/rows/saved_dataset.html",
    ),
    "permissions": ListSpec(
        types.PERMISSION,
        permissions_queryset,
        filtersets.PermissionFilterSet,
        (NAME, PROJECT, Column("Types"), Column("Names"), Column("Actions"), Column("Roles / groups")),
        "catalog/rows/permission.html",
    ),
    "features": ListSpec(
        types.FEATURE,
        features_queryset,
        filtersets.FeatureFilterSet,
        (
            Column("Feature", "name"),
            Column("View", "view"),
            Column("Project", "project"),
            Column("Type", "dtype"),
            Column("Description"),
            Column("Tags"),
        ),
        "catalog/rows/feature.html",
    ),
}


def object_list(request: HttpRequest, spec: ListSpec) -> HttpResponse:
    """A filtered, sorted, paginated list of the objects the user may DESCRIBE."""
    filterset = spec.filterset(request.GET, spec.queryset(request.user), request.user)
    paginator = Paginator(filterset.apply(), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "spec": spec,
        "page_type": spec.page,
        "filterset": filterset,
        "page_obj": page,
        "objects": page.object_list,
        "sort": filterset.sort,
    }
    template = "catalog/list.html"
    if getattr(request, "htmx", False) and request.htmx.target == "results":
        template = "catalog/partials/list_results.html"
    return render(request, template, context)


def list_view(slug: str) -> Callable[[HttpRequest], HttpResponse]:
    spec = SPECS[slug]

    def view(request: HttpRequest) -> HttpResponse:
        return object_list(request, spec)

    view.__name__ = f"{slug.replace('-', '_')}_list"
    view.__doc__ = f"The {spec.page.label.lower()} the user may see, filtered and paginated."
    return view
