"""The registry types the portal shows: URL segment, labels, model, and how to link one.

One declaration per type keeps URLs, navigation, lineage links and templates in step.
"""

from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.urls import reverse

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
)


@dataclass(frozen=True)
class PageType:
    resource_type: str  # access.resources name: "feature_view"
    slug: str  # URL segment and URL-name stem: "feature-views"
    label: str  # plural, for headings and navigation: "Feature views"
    singular: str  # "feature view"
    model: type[Model]
    empty_hint: str = ""  # shown when a list is empty

    @property
    def list_url_name(self) -> str:
        return f"catalog:{self.slug}"

    @property
    def detail_url_name(self) -> str:
        return f"catalog:{self.slug}-detail"


APPLY_HINT = "apply a feature repo: python manage.py apply examples/driver_stats"

ENTITY = PageType("entity", "entities", "Entities", "entity", Entity, f"No entities yet — {APPLY_HINT}")
DATA_SOURCE = PageType(
    "data_source", "data-sources", "Data sources", "data source", DataSource, f"No data sources yet — {APPLY_HINT}"
)
FEATURE_VIEW = PageType(
    "feature_view",
    "feature-views",
    "Feature views",
    "feature view",
    FeatureView,
    f"No feature views yet — {APPLY_HINT}",
)
ON_DEMAND_FEATURE_VIEW = PageType(
    "on_demand_feature_view",
    "on-demand-feature-views",
    "On-demand views",
    "on-demand view",
    OnDemandFeatureView,
    f"No on-demand views yet — {APPLY_HINT}",
)
FEATURE_SERVICE = PageType(
    "feature_service",
    "feature-services",
    "Feature services",
    "feature service",
    FeatureService,
    f"No feature services yet — {APPLY_HINT}",
)
SAVED_DATASET = PageType(
    "saved_dataset",
    "saved-datasets",
    "Saved datasets",
    "saved dataset",
    SavedDataset,
    "No saved datasets yet — they are made by historical retrieval with a dataset name (docs/api.md).",
)
PERMISSION = PageType(
    "permission", "permissions", "Permissions", "permission", Permission, f"No permissions yet — {APPLY_HINT}"
)
FEATURE = PageType("feature", "features", "Features", "feature", Field, f"No features yet — {APPLY_HINT}")
PROJECT = PageType("project", "projects", "Projects", "project", Project)

# Navigation order.
LIST_TYPES = [
    FEATURE,
    FEATURE_VIEW,
    ON_DEMAND_FEATURE_VIEW,
    FEATURE_SERVICE,
    ENTITY,
    DATA_SOURCE,
    SAVED_DATASET,
    PERMISSION,
]
OBJECT_TYPES = [ENTITY, DATA_SOURCE, FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW, FEATURE_SERVICE, SAVED_DATASET, PERMISSION]
BY_RESOURCE_TYPE = {t.resource_type: t for t in [*OBJECT_TYPES, PROJECT]}


def detail_url(obj: Any, project_name: str | None = None) -> str:
    """The portal page of a registry object or a feature (Field).

    `project_name` spares a query when the caller knows it; otherwise the object's
    `project` must be loaded (select_related) to keep lists free of N+1 queries."""
    if isinstance(obj, Field):
        view = obj.feature_view or obj.on_demand_feature_view
        kind = "feature-views" if obj.feature_view_id else "on-demand-feature-views"
        project = project_name or view.project.name
        parent = "view" if obj.feature_view_id else "odfv"
        return reverse(f"catalog:{kind}-feature", kwargs={"project": project, parent: view.name, "feature": obj.name})
    rtype = getattr(obj, "resource_type", "")
    if rtype == "project":
        return reverse("catalog:project-detail", kwargs={"project": obj.name})
    page = BY_RESOURCE_TYPE[rtype]
    return reverse(page.detail_url_name, kwargs={"project": project_name or obj.project.name, "name": obj.name})


def detail_url_for(resource_type: str, project: str, name: str) -> str:
    """The same, from plain values (lineage nodes, change rows)."""
    if resource_type == "project":
        return reverse("catalog:project-detail", kwargs={"project": project})
    return reverse(BY_RESOURCE_TYPE[resource_type].detail_url_name, kwargs={"project": project, "name": name})
