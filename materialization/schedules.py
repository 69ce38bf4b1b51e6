"""Materialization schedules: a feature view's `schedule` (cron or interval), kept in
step with django-celery-beat's PeriodicTask so that `celery -A larder beat` (with the
DatabaseScheduler) runs `materialize_incremental` for the view.

In the feature repo (docs/feature-repo.md):

    schedule: {every: 15m}                 # a fixed interval (seconds, or 90s 15m 2h 1d 1w)
    schedule: {cron: "0 * * * *"}          # five cron fields, UTC
    schedule: {cron: "0 3 * * *", enabled: false}

Canonical form (what plan compares): {"every": <seconds>, "enabled": bool} or
{"cron": "<five fields>", "enabled": bool}.

Who owns a schedule: one applied from the repo (`origin = repo`) is part of the view's
definition: the next apply replaces or removes it. One made in the admin (`origin =
admin`) survives applies of a repo that says nothing about it; a repo that does name a
schedule for the view takes it over.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import MaterializationSchedule, ScheduleKind, ScheduleOrigin

TASK_NAME = "materialization.scheduled_materialize"
MIN_INTERVAL_SECONDS = 10
_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_seconds(seconds: int) -> str:
    """90 -> "1m30s", 86400 -> "1d": the repo's duration spelling."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def cron_fields(text: str) -> list[str]:
    """The five fields of a cron expression; ValueError naming the problem otherwise."""
    fields = str(text).split()
    if len(fields) != 5:
        raise ValueError(f"cron {text!r} needs five fields: minute hour day-of-month month day-of-week")
    from django_celery_beat.validators import crontab_validator

    try:
        crontab_validator(" ".join(fields))
    except ValidationError as exc:
        raise ValueError(f"bad cron {text!r}: {'; '.join(exc.messages)}") from None
    return fields


def normalize_schedule(raw: Any) -> dict[str, Any]:
    """The canonical schedule of a repo's `schedule:` value; ValueError naming the problem."""
    from catalog.repo.fields import parse_ttl

    if not isinstance(raw, dict):
        raise ValueError("must be a mapping: {every: 15m} or {cron: '0 * * * *'} (optionally enabled: false)")
    unknown = sorted(set(raw) - {"every", "cron", "enabled"})
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (every, cron, enabled)")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be true or false, got {enabled!r}")
    if ("every" in raw) == ("cron" in raw):
        raise ValueError("give exactly one of every (an interval) and cron (five cron fields)")
    if "cron" in raw:
        return {"cron": " ".join(cron_fields(raw["cron"])), "enabled": enabled}
    seconds = parse_ttl(raw["every"])
    if seconds < MIN_INTERVAL_SECONDS:
        raise ValueError(f"every {raw['every']!r} is shorter than {MIN_INTERVAL_SECONDS} seconds")
    return {"every": seconds, "enabled": enabled}


def set_repo_schedule(feature_view: Any, spec: dict[str, Any] | None) -> None:
    """Apply a view's canonical repo schedule (None: the repo names none, so a schedule
    the repo made goes, one made in the admin stays)."""
    current = MaterializationSchedule.objects.filter(feature_view=feature_view).first()
    if spec is None:
        if current is not None and current.origin == ScheduleOrigin.REPO:
            current.delete()
        return
    schedule = current or MaterializationSchedule(feature_view=feature_view)
    if "cron" in spec:
        schedule.kind, schedule.cron, schedule.every_seconds = ScheduleKind.CRON, spec["cron"], 0
    else:
        schedule.kind, schedule.cron, schedule.every_seconds = ScheduleKind.INTERVAL, "", spec["every"]
    schedule.enabled = spec.get("enabled", True)
    schedule.origin = ScheduleOrigin.REPO
    schedule.save()


def repo_schedules(feature_view_ids: list[int] | None = None, project: Any = None) -> dict[int, dict[str, Any]]:
    """{feature view id: canonical schedule} of the repo-owned schedules of these views, or
    of every view of `project` (one query; by project, no long IN list for big repos)."""
    schedules = MaterializationSchedule.objects.filter(origin=ScheduleOrigin.REPO)
    if project is not None:
        schedules = schedules.filter(feature_view__project=project)
    else:
        schedules = schedules.filter(feature_view_id__in=feature_view_ids or [])
    return {s.feature_view_id: s.as_repo_dict() for s in schedules}


def task_name(schedule: MaterializationSchedule) -> str:
    view = schedule.feature_view
    return f"materialize {view.project.name}/{view.name} (view {view.pk})"[:200]


def sync_periodic_task(schedule: MaterializationSchedule) -> None:
    """Create or update the PeriodicTask behind `schedule` (beat notices within seconds:
    django-celery-beat bumps its change marker on every save)."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    interval = crontab = None
    if schedule.kind == ScheduleKind.CRON:
        minute, hour, day_of_month, month_of_year, day_of_week = cron_fields(schedule.cron)
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            timezone="UTC",
        )
    else:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.every_seconds, period=IntervalSchedule.SECONDS
        )
    task = schedule.periodic_task or PeriodicTask.objects.filter(name=task_name(schedule)).first() or PeriodicTask()
    task.name = task_name(schedule)
    task.task = TASK_NAME
    task.kwargs = json.dumps({"feature_view_id": schedule.feature_view_id})
    task.interval, task.crontab = interval, crontab
    task.enabled = schedule.enabled
    task.description = f"materialize_incremental for feature view {schedule.feature_view} ({schedule.describe()})"
    task.save()
    if schedule.periodic_task_id != task.pk:
        MaterializationSchedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task


@receiver(post_save, sender=MaterializationSchedule)
def _schedule_saved(sender: type, instance: MaterializationSchedule, **kwargs: Any) -> None:
    sync_periodic_task(instance)


@receiver(post_delete, sender=MaterializationSchedule)
def _schedule_deleted(sender: type, instance: MaterializationSchedule, **kwargs: Any) -> None:
    task_id = instance.periodic_task_id
    if task_id is not None:
        from django_celery_beat.models import PeriodicTask

        PeriodicTask.objects.filter(pk=task_id).delete()
