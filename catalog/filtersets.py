"""List filters and sorting for the portal's list pages, declared per type.

A FilterSet reads the GET parameters, applies them to a queryset that has ALREADY
been narrowed by access.policy.restrict, and offers the choices of its select boxes
computed from that same narrowed queryset, so a filter never names an object (or an
owner, or a project) the viewer may not see. Each choice list is one query, whatever
the number of rows.

Parameters: `q` (name contains), `project`, `tags` (`key:value` tokens, space or
comma separated; all must match), `owner`, `entity`, `kind` (source kind), `store`
(online | offline), `dtype`, `view_kind` (features: feature view | on-demand), and
`sort` (a public sort name, `-` for descending).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db.models import Q, QuerySet
from django.http import QueryDict

from access.actions import Action
from access.policy import restrict
from catalog.api.pagination import filter_tags
from catalog.models import DataSource, Entity


@dataclass(frozen=True)
class FilterField:
    """One control of the filter form."""

    name: str
    label: str
    widget: str  # search | select | text
    choices: tuple[tuple[str, str], ...] = ()
    placeholder: str = ""
    value: str = ""


def parse_tags(raw_values: list[str]) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """`key:value` tokens from one or more parameters; returns (pairs, bad tokens)."""
    pairs, bad = [], []
    for raw in raw_values:
        for token in re.split(r"[\s,]+", raw.strip()):
            if not token:
                continue
            key, sep, value = token.partition(":")
            if sep and key:
                pairs.append((key, value))
            else:
                bad.append(token)
    return tuple(pairs), bad


class FilterSet:
    """Filters and sorting of one list page (subclasses declare, this class does)."""

    filters: ClassVar[tuple[str, ...]] = ("q", "project", "tags", "owner")
    # public sort name -> order_by fields (ascending); "-name" reverses them
    sorts: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("name", "project__name"),
        "project": ("project__name", "name"),
        "owner": ("owner", "name"),
        "updated": ("updated_at", "name"),
    }
    default_sort: ClassVar[str] = "name"
    name_field: ClassVar[str] = "name"
    project_field: ClassVar[str] = "project__name"
    owner_field: ClassVar[str] = "owner"
    labels: ClassVar[dict[str, str]] = {
        "q": "Name",
        "project": "Project",
        "tags": "Tags",
        "owner": "Owner",
        "entity": "Entity",
        "kind": "Source kind",
        "store": "Store",
        "dtype": "Type",
        "view_kind": "View kind",
    }

    def __init__(self, params: QueryDict, queryset: QuerySet, user: Any) -> None:
        self.params = params
        self.base = queryset  # restricted, unfiltered: the source of the choices
        self.user = user
        self.tags, self.bad_tags = parse_tags(params.getlist("tags"))
        sort = params.get("sort") or self.default_sort
        self.sort = sort if sort.lstrip("-") in self.sorts else self.default_sort

    def value(self, name: str) -> str:
        return (self.params.get(name) or "").strip()

    @property
    def active(self) -> bool:
        return any(self.value(name) for name in self.filters)

    # -- applying -----------------------------------------------------------------

    def apply(self) -> QuerySet:
        queryset = self.base
        for name in self.filters:
            value = self.value(name)
            if name == "tags":
                queryset = filter_tags(queryset, self.tags) if self.tags else queryset
            elif value:
                queryset = getattr(self, f"filter_{name}")(queryset, value)
        return self.order(queryset)

    def order(self, queryset: QuerySet) -> QuerySet:
        fields = self.sorts[self.sort.lstrip("-")]
        if self.sort.startswith("-"):
            fields = tuple(f"-{f}" for f in fields)
        return queryset.order_by(*fields, "pk")

    def filter_q(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(**{f"{self.name_field}__icontains": value})

    def filter_project(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(**{self.project_field: value})

    def filter_owner(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(**{self.owner_field: value})

    # -- the form -----------------------------------------------------------------

    def distinct_values(self, field: str) -> list[str]:
        rows = self.base.order_by().values_list(field, flat=True).distinct()
        return sorted({v for v in rows if v})

    def choices_project(self) -> list[str]:
        return self.distinct_values(self.project_field)

    def choices_owner(self) -> list[str]:
        return self.distinct_values(self.owner_field)

    def fields(self) -> list[FilterField]:
        out = []
        for name in self.filters:
            label = self.labels[name]
            if name == "q":
                out.append(FilterField(name, label, "search", placeholder="contains…", value=self.value(name)))
            elif name == "tags":
                out.append(FilterField(name, label, "text", placeholder="key:value", value=self.value(name)))
            else:
                options = getattr(self, f"choices_{name}")()
                pairs = tuple((o, o) if isinstance(o, str) else o for o in options)
                out.append(FilterField(name, label, "select", choices=pairs, value=self.value(name)))
        return out


class EntityFilterSet(FilterSet):
    pass


class DataSourceFilterSet(FilterSet):
    filters = ("q", "project", "kind", "tags", "owner")
    sorts = {**FilterSet.sorts, "kind": ("kind", "name")}

    def filter_kind(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(kind=value)

    def choices_kind(self) -> list[tuple[str, str]]:
        present = set(self.distinct_values("kind"))
        return [(k, label) for k, label in DataSource.Kind.choices if k in present]


class FeatureViewFilterSet(FilterSet):
    filters = ("q", "project", "entity", "kind", "store", "tags", "owner")
    sorts = {**FilterSet.sorts, "features": ("n_features", "name"), "ttl": ("ttl", "name")}

    def filter_entity(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(entities__name=value).distinct()

    def filter_kind(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(source__kind=value)

    def filter_store(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(**{value: True}) if value in ("online", "offline") else queryset

    def choices_entity(self) -> list[str]:
        """Entity names the viewer may see (never those of hidden entities)."""
        visible = restrict(Entity.objects.all(), self.user, Action.DESCRIBE).order_by()
        return sorted(set(visible.values_list("name", flat=True)))

    def choices_kind(self) -> list[tuple[str, str]]:
        present = set(self.distinct_values("source__kind"))
        return [(k, label) for k, label in DataSource.Kind.choices if k in present]

    def choices_store(self) -> list[tuple[str, str]]:
        return [("online", "online"), ("offline", "offline")]


class OnDemandFeatureViewFilterSet(FilterSet):
    sorts = {**FilterSet.sorts, "mode": ("mode", "name")}


class FeatureServiceFilterSet(FilterSet):
    pass


class SavedDatasetFilterSet(FilterSet):
    sorts = {**FilterSet.sorts, "created": ("created_at", "name")}


class PermissionFilterSet(FilterSet):
    pass


class FeatureFilterSet(FilterSet):
    """Features (Fields) across feature views and on-demand views."""

    filters = ("q", "project", "view_kind", "dtype", "entity", "tags", "owner")
    sorts = {
        "name": ("name", "parent_name"),
        "view": ("parent_name", "position"),
        "project": ("parent_project", "parent_name", "position"),
        "dtype": ("dtype", "name"),
    }
    project_field = "parent_project"
    owner_field = "parent_owner"
    labels = {**FilterSet.labels, "owner": "View owner"}

    def filter_q(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(parent_name__icontains=value))

    def filter_view_kind(self, queryset: QuerySet, value: str) -> QuerySet:
        if value == "on_demand":
            return queryset.filter(on_demand_feature_view__isnull=False)
        if value == "feature_view":
            return queryset.filter(feature_view__isnull=False)
        return queryset

    def filter_dtype(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(dtype=value)

    def filter_entity(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(
            Q(feature_view__entities__name=value) | Q(on_demand_feature_view__sources__entities__name=value)
        ).distinct()

    def choices_view_kind(self) -> list[tuple[str, str]]:
        return [("feature_view", "feature view"), ("on_demand", "on-demand view")]

    def choices_dtype(self) -> list[str]:
        return self.distinct_values("dtype")

    choices_entity = FeatureViewFilterSet.choices_entity
