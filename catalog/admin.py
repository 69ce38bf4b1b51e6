"""The registry in the Django admin. Every admin here is a GatedModelAdmin
(access/admin_gate.py): what a staff user sees and may change is what Larder
permissions grant, whatever Django model permissions they hold or lack.

The change history (RegistryChange) is read-only for everyone. A superuser sees all of
it; anyone else sees the rows about objects they may DESCRIBE now, so a diff never shows
the definition of an object its reader could not open. Rows about deleted objects (and
deleted projects) are therefore for superusers only.
"""

import json
from collections import defaultdict

from django import forms
from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from access.actions import Action
from access.admin_gate import CREATE, GatedInlineMixin, GatedModelAdmin, ReadOnlyInlineMixin, is_staff, may
from access.models import Permission
from access.policy import has_any, restrict
from access.principals import principal_for

from .models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    MaterializationInterval,
    OnDemandFeatureView,
    Project,
    RegistryChange,
    SavedDataset,
)

REGISTRY_MODELS: list[type[Model]] = [
    Project,
    Entity,
    DataSource,
    FeatureView,
    OnDemandFeatureView,
    FeatureService,
    SavedDataset,
    Permission,
]
BY_PROJECT = ("project", admin.RelatedOnlyFieldListFilter)  # only projects of rows the user may see
SEARCH = ["name", "description"]
STAMPS = ["created_at", "updated_at"]


# -- inlines: their gate is the parent's ----------------------------------------------
class FieldInline(GatedInlineMixin, admin.TabularInline):
    model = Field
    fields = ["name", "dtype", "description", "tags", "position"]
    extra = 0


class MaterializationIntervalInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = MaterializationInterval
    fields = readonly_fields = ["start", "end", "created_at"]
    extra = 0
    can_delete = False


class ProjectionForm(forms.ModelForm):
    class Meta:
        model = FeatureViewProjection
        fields = ["feature_view", "on_demand_feature_view", "features", "alias", "position"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if bool(cleaned.get("feature_view")) == bool(cleaned.get("on_demand_feature_view")):
            raise forms.ValidationError("Choose exactly one view: a feature view or an on-demand feature view.")
        return cleaned


class ProjectionInline(GatedInlineMixin, admin.TabularInline):
    model = FeatureViewProjection
    form = ProjectionForm
    extra = 0


# -- registry objects -------------------------------------------------------------------
@admin.register(Project)
class ProjectAdmin(GatedModelAdmin):
    list_display = ["name", "owner", "version", "updated_at"]
    list_select_related = False
    search_fields = SEARCH
    readonly_fields = ["version", *STAMPS]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A permission lives in a project, so none can grant creating a new one: the gate
        # answers this for an unsaved project (superusers only).
        return may(request.user, CREATE, "project", Project())


@admin.register(Entity)
class EntityAdmin(GatedModelAdmin):
    list_display = ["name", "project", "join_keys", "value_type", "owner", "updated_at"]
    list_filter = [BY_PROJECT, "value_type"]
    search_fields = SEARCH
    readonly_fields = STAMPS


@admin.register(DataSource)
class DataSourceAdmin(GatedModelAdmin):
    list_display = ["name", "project", "kind", "timestamp_field", "updated_at"]
    list_filter = [BY_PROJECT, "kind"]
    search_fields = SEARCH
    readonly_fields = STAMPS


@admin.register(FeatureView)
class FeatureViewAdmin(GatedModelAdmin):
    list_display = ["name", "project", "source_name", "online", "offline", "ttl", "owner", "updated_at"]
    list_filter = [BY_PROJECT, "online", "offline"]
    list_select_related = ["project", "source"]
    search_fields = SEARCH
    readonly_fields = STAMPS
    inlines = [FieldInline, MaterializationIntervalInline]

    @admin.display(description="source", ordering="source__name")
    def source_name(self, obj: FeatureView) -> str:
        return obj.source.name


@admin.register(OnDemandFeatureView)
class OnDemandFeatureViewAdmin(GatedModelAdmin):
    list_display = ["name", "project", "mode", "owner", "updated_at"]
    list_filter = [BY_PROJECT, "mode"]
    search_fields = SEARCH
    readonly_fields = STAMPS
    inlines = [FieldInline]


@admin.register(FeatureService)
class FeatureServiceAdmin(GatedModelAdmin):
    list_display = ["name", "project", "owner", "updated_at"]
    list_filter = [BY_PROJECT]
    search_fields = SEARCH
    readonly_fields = STAMPS
    inlines = [ProjectionInline]


@admin.register(SavedDataset)
class SavedDatasetAdmin(GatedModelAdmin):
    list_display = ["name", "project", "storage", "created_by", "created_at"]
    list_filter = [BY_PROJECT]
    list_select_related = ["project", "created_by"]
    search_fields = SEARCH
    readonly_fields = ["created_by", *STAMPS]  # a user picker would list every account


# -- the change history -------------------------------------------------------------------
def visible_changes(queryset: QuerySet, user: object) -> QuerySet:
    """The RegistryChange rows about objects `user` may DESCRIBE (superusers: all)."""
    if principal_for(user).is_superuser:
        return queryset
    condition = Q(pk__in=[])
    for model in REGISTRY_MODELS:
        project_field = "pk" if model is Project else "project_id"
        names: dict[int, list[str]] = defaultdict(list)
        for project_id, name in restrict(model.objects.all(), user, Action.DESCRIBE).values_list(project_field, "name"):
            names[project_id].append(name)
        for project_id, object_names in names.items():
            condition |= Q(object_type=model.resource_type, project_id=project_id, object_name__in=object_names)
    return queryset.filter(condition)


@admin.register(RegistryChange)
class RegistryChangeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "object_type", "project_name", "object_name", "user", "actor"]
    list_filter = ["action", "object_type", BY_PROJECT]
    list_select_related = ["user"]
    search_fields = ["object_name", "project_name"]
    fields = readonly_fields = [
        "created_at",
        "action",
        "object_type",
        "project_name",
        "object_name",
        "user",
        "actor",
        "diff_shown",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return visible_changes(super().get_queryset(request), request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: RegistryChange | None = None) -> bool:
        user = request.user
        if not is_staff(user):
            return False
        if obj is None:
            return any(has_any(user, Action.DESCRIBE, m.resource_type) for m in REGISTRY_MODELS)
        return visible_changes(RegistryChange.objects.filter(pk=obj.pk), user).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RegistryChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RegistryChange | None = None) -> bool:
        return False

    @admin.display(description="diff")
    def diff_shown(self, obj: RegistryChange) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.diff, indent=2, sort_keys=True, ensure_ascii=False))
