"""What the registry API serves, one declaration per object type: the URL segment,
the JSON list key, Feast's words for "not found", the serializer, and the joins
that keep lists at a constant number of queries."""

from dataclasses import dataclass, field

from django.db.models import Model, QuerySet
from rest_framework.serializers import Serializer

from access.models import Permission
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    Project,
    SavedDataset,
)

from . import serializers as s

# ?sort_by= names (Feast's camelCase and snake_case) -> model fields.
OBJECT_SORTS = {
    "name": "name",
    "project": "project__name",
    "createdTimestamp": "created_at",
    "created_timestamp": "created_at",
    "lastUpdatedTimestamp": "updated_at",
    "last_updated_timestamp": "updated_at",
}
PROJECT_SORTS = {k: v.replace("project__name", "name") for k, v in OBJECT_SORTS.items()}


@dataclass(frozen=True)
class RegistryType:
    """One registry object type as the REST API exposes it."""

    object_type: str  # access.resources / catalog.repo name: "feature_view"
    path: str  # URL segment: "feature_views"
    list_key: str  # JSON key of lists (protobuf JSON of Feast's List responses): "featureViews"
    label: str  # Feast's words: "Feature view"
    model: type[Model]
    serializer: type[Serializer]
    select_related: tuple[str, ...] = ("project",)
    prefetch_related: tuple[str, ...] = ()
    writable: bool = True  # POST/DELETE through catalog.repo.apply_object / delete_object
    sorts: dict[str, str] = field(default_factory=lambda: OBJECT_SORTS)

    @property
    def project_scoped(self) -> bool:
        return self.object_type != "project"

    @property
    def operation_noun(self) -> str:
        """`FeatureView`, for OpenAPI operation ids (`getFeatureView`)."""
        return "".join(part.capitalize() for part in self.object_type.split("_"))

    def queryset(self) -> QuerySet:
        qs = self.model.objects.all()
        if self.select_related:
            qs = qs.select_related(*self.select_related)
        if self.prefetch_related:
            qs = qs.prefetch_related(*self.prefetch_related)
        return qs

    def not_found(self, name: str, project: str = "") -> str:
        """Feast's message: `Entity nope does not exist in project demo`."""
        if not self.project_scoped:
            return f"{self.label} {name} does not exist"
        return f"{self.label} {name} does not exist in project {project}"


PROJECT = RegistryType(
    "project", "projects", "projects", "Project", Project, s.ProjectSerializer, select_related=(), sorts=PROJECT_SORTS
)
ENTITY = RegistryType("entity", "entities", "entities", "Entity", Entity, s.EntitySerializer)
DATA_SOURCE = RegistryType(
    "data_source",
    "data_sources",
    "dataSources",
    "Data source",
    DataSource,
    s.DataSourceSerializer,
    select_related=("project", "batch_source__project"),
)
FEATURE_VIEW = RegistryType(
    "feature_view",
    "feature_views",
    "featureViews",
    "Feature view",
    FeatureView,
    s.FeatureViewSerializer,
    select_related=("project", "source__project", "source__batch_source__project"),
    prefetch_related=("entities", "fields", "materialization_intervals"),
)
ON_DEMAND_FEATURE_VIEW = RegistryType(
    "on_demand_feature_view",
    "on_demand_feature_views",
    "onDemandFeatureViews",
    "On demand feature view",
    OnDemandFeatureView,
    s.OnDemandFeatureViewSerializer,
    prefetch_related=("fields", "sources__fields", "sources__entities", "request_sources__project"),
)
FEATURE_SERVICE = RegistryType(
    "feature_service",
    "feature_services",
    "featureServices",
    "Feature service",
    FeatureService,
    s.FeatureServiceSerializer,
    prefetch_related=(
        "projections__feature_view__fields",
        "projections__feature_view__entities",
        "projections__on_demand_feature_view__fields",
    ),
)
SAVED_DATASET = RegistryType(
    "saved_dataset",
    "saved_datasets",
    "savedDatasets",
    "Saved dataset",
    SavedDataset,
    s.SavedDatasetSerializer,
    select_related=("project", "feature_service"),
    writable=False,  # written by historical retrieval, not by apply (as in Feast)
)
PERMISSION = RegistryType("permission", "permissions", "permissions", "Permission", Permission, s.PermissionSerializer)

# Project-scoped types in URL order; PROJECT has its own two routes.
OBJECT_TYPES = [ENTITY, DATA_SOURCE, FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW, FEATURE_SERVICE, SAVED_DATASET, PERMISSION]
ALL_TYPES = [PROJECT, *OBJECT_TYPES]

FEATURE_SORTS = {
    "name": "name",
    "featureView": "sort_view",
    "feature_view": "sort_view",
    "project": "sort_project",
    "type": "dtype",
}
