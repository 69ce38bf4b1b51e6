"""Materialization in the Django admin, behind the one gate (access.policy).

- Schedules: a staff user sees the schedules of views they may DESCRIBE and adds,
  edits or deletes those of views they may DESCRIBE and UPDATE (a schedule is part of
  the view's definition). Saving keeps the django-celery-beat PeriodicTask in step
  (materialization.schedules), so beat fires the new schedule within seconds; a
  schedule saved here is marked `origin = admin` and survives re-applies of a repo
  that names none. Each change is written to the registry history of the view.
- Jobs: read-only, the jobs of views the user may DESCRIBE; "cancel" needs WRITE_ONLINE.

django-celery-beat's own admin pages are removed: they would let Django model
permissions (which play no part in Larder) edit what beat runs, past the gate.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from access.actions import Action
from access.admin_gate import is_staff
from access.policy import authorize, has_any, is_allowed, restrict
from catalog import admin_audit
from catalog.models import FeatureView, RegistryChange

from . import jobs
from .models import MaterializationJob, MaterializationPartition, MaterializationSchedule, ScheduleKind, ScheduleOrigin
from .schedules import MIN_INTERVAL_SECONDS, cron_fields

DESCRIBE = (Action.DESCRIBE,)
CHANGE = (Action.DESCRIBE, Action.UPDATE)


def _may(request: HttpRequest, actions: tuple[Action, ...], view: FeatureView | None) -> bool:
    user = request.user
    if not is_staff(user):
        return False
    return has_any(user, actions, "feature_view") if view is None else is_allowed(user, actions, view)


def _unregister_beat_admin() -> None:
    from django_celery_beat import models as beat

    for model in (beat.PeriodicTask, beat.IntervalSchedule, beat.CrontabSchedule, beat.SolarSchedule):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
    clocked = getattr(beat, "ClockedSchedule", None)
    if clocked is not None and admin.site.is_registered(clocked):
        admin.site.unregister(clocked)


_unregister_beat_admin()


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = MaterializationSchedule
        fields = ["feature_view", "kind", "cron", "every_seconds", "enabled"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == ScheduleKind.CRON:
            try:
                cleaned["cron"] = " ".join(cron_fields(cleaned.get("cron") or ""))
            except ValueError as exc:
                self.add_error("cron", str(exc))
            cleaned["every_seconds"] = 0
        elif kind == ScheduleKind.INTERVAL:
            if (cleaned.get("every_seconds") or 0) < MIN_INTERVAL_SECONDS:
                self.add_error("every_seconds", f"at least {MIN_INTERVAL_SECONDS} seconds")
            cleaned["cron"] = ""
        view = cleaned.get("feature_view")
        if view is not None and not view.online:
            self.add_error("feature_view", f"{view.name} is offline-only (online: false): nothing to materialize")
        return cleaned


@admin.register(MaterializationSchedule)
class MaterializationScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ["feature_view", "schedule", "enabled", "origin", "last_run_at", "updated_at"]
    list_filter = ["enabled", "origin", "kind"]
    list_select_related = ["feature_view__project", "periodic_task"]
    search_fields = ["feature_view__name"]
    readonly_fields = ["origin", "last_run_at", "created_at", "updated_at"]

    @admin.display(description="schedule")
    def schedule(self, obj: MaterializationSchedule) -> str:
        return obj.describe()

    @admin.display(description="last run")
    def last_run_at(self, obj: MaterializationSchedule) -> Any:
        return obj.periodic_task.last_run_at if obj.periodic_task_id else None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return restrict(super().get_queryset(request), request.user, DESCRIBE)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may(request, DESCRIBE, None)

    def has_view_permission(self, request: HttpRequest, obj: MaterializationSchedule | None = None) -> bool:
        return _may(request, DESCRIBE, obj.feature_view if obj else None)

    def has_change_permission(self, request: HttpRequest, obj: MaterializationSchedule | None = None) -> bool:
        return _may(request, CHANGE, obj.feature_view if obj else None)

    def has_delete_permission(self, request: HttpRequest, obj: MaterializationSchedule | None = None) -> bool:
        return _may(request, CHANGE, obj.feature_view if obj else None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _may(request, CHANGE, None)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any):
        if db_field.name == "feature_view":
            kwargs["queryset"] = restrict(
                FeatureView.objects.select_related("project").filter(online=True), request.user, CHANGE
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: MaterializationSchedule, form: forms.ModelForm, change: bool
    ) -> None:
        stored = MaterializationSchedule.objects.filter(pk=obj.pk).select_related("feature_view").first()
        if stored is not None:
            authorize(request.user, CHANGE, stored.feature_view)
        authorize(request.user, CHANGE, obj.feature_view)
        before = stored.describe() if stored else None
        obj.origin = ScheduleOrigin.ADMIN
        super().save_model(request, obj, form, change)
        after = f"{obj.describe()}{'' if obj.enabled else ' (disabled)'}"
        admin_audit.record(request.user, obj.feature_view, RegistryChange.Action.UPDATE, {"schedule": [before, after]})

    def delete_model(self, request: HttpRequest, obj: MaterializationSchedule) -> None:
        authorize(request.user, CHANGE, obj.feature_view)
        admin_audit.record(
            request.user, obj.feature_view, RegistryChange.Action.UPDATE, {"schedule": [obj.describe(), None]}
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class PartitionInline(admin.TabularInline):
    model = MaterializationPartition
    fields = readonly_fields = [
        "index",
        "start",
        "end",
        "state",
        "attempt",
        "workers",
        "rows_read",
        "rows_written",
        "error",
    ]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may(request, DESCRIBE, obj.feature_view if obj else None)


@admin.register(MaterializationJob)
class MaterializationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project_name", "view_name", "state", "percent", "rows_written", "trigger", "created_at"]
    list_filter = ["state", "trigger", "incremental"]
    search_fields = ["view_name", "project_name"]
    inlines = [PartitionInline]
    actions = ["cancel_jobs"]
    readonly_fields = [
        "feature_view",
        "project_name",
        "view_name",
        "start",
        "end",
        "incremental",
        "trigger",
        "requested_by",
        "state",
        "partitions_total",
        "partitions_done",
        "rows_read",
        "rows_written",
        "rows_skipped",
        "attempt",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "interval",
    ]
    fields = readonly_fields

    @admin.display(description="progress")
    def percent(self, obj: MaterializationJob) -> str:
        return f"{obj.percent}%"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return restrict(super().get_queryset(request), request.user, DESCRIBE)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may(request, DESCRIBE, None)

    def has_view_permission(self, request: HttpRequest, obj: MaterializationJob | None = None) -> bool:
        return _may(request, DESCRIBE, obj.feature_view if obj else None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: MaterializationJob | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: MaterializationJob | None = None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return _may(request, (Action.WRITE_ONLINE,), None)

    @admin.action(description="Cancel the selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        cancelled = 0
        for job in queryset.select_related("feature_view__project"):
            authorize(request.user, Action.WRITE_ONLINE, job.feature_view)
            cancelled += jobs.cancel_job(job)
        self.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)
