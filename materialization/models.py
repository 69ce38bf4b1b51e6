"""Materialization jobs, their partitions, and the schedules that start them.

A MaterializationJob row is the source of truth for one run of one feature view over
one window: Celery messages only carry ids, and every task re-reads the row. The
database also holds the per-view lock: a partial unique index admits at most one
PENDING or RUNNING job per view, so two web processes, two beat instances or a CLI
and a worker cannot start the same view twice, whatever machine they run on.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class JobState(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE_STATES = (JobState.PENDING, JobState.RUNNING)
FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Trigger(models.TextChoices):
    API = "api", "API"
    CLI = "cli", "command line"
    SCHEDULE = "schedule", "schedule"
    UI = "ui", "web page"


class MaterializationJob(models.Model):
    """One run of `materialize` (or `materialize_incremental`) for one feature view.

    Counters are the sums over the partitions, refreshed as partitions report
    progress. `attempt` is the highest attempt of any partition (1 = no redelivery).
    """

    feature_view = models.ForeignKey(
        "catalog.FeatureView", on_delete=models.CASCADE, related_name="materialization_jobs"
    )
    # Copies, so that logs, alerts and the jobs page need no join (and read well in the admin).
    project_name = models.CharField(max_length=255)
    view_name = models.CharField(max_length=255)
    start = models.DateTimeField()
    end = models.DateTimeField()
    incremental = models.BooleanField(default=False)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.API)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.PENDING)
    partitions_total = models.PositiveIntegerField(default=1)
    partitions_done = models.PositiveIntegerField(default=0)
    rows_read = models.PositiveBigIntegerField(default=0)
    rows_written = models.PositiveBigIntegerField(default=0)
    rows_skipped = models.PositiveBigIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    interval = models.OneToOneField(
        "catalog.MaterializationInterval", null=True, blank=True, on_delete=models.SET_NULL, related_name="job"
    )
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The per-view lock (issue 6): inserting a second active job for a view fails.
            models.UniqueConstraint(
                fields=["feature_view"],
                condition=Q(state__in=["PENDING", "RUNNING"]),
                name="materialization_one_active_job_per_view",
            ),
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="materialization_job_state")]

    def __str__(self) -> str:
        return f"job {self.pk} {self.project_name}/{self.view_name} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def progress(self) -> float:
        """0..1, in whole partitions: the engine streams its rows, so how far a running
        partition has got is not known in advance (rows done are, and are shown)."""
        if self.state == JobState.SUCCEEDED:
            return 1.0
        return self.partitions_done / self.partitions_total if self.partitions_total else 0.0

    @property
    def percent(self) -> int:
        return int(self.progress * 100)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        from django.utils import timezone

        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @staticmethod
    def gate_through(queryset: models.QuerySet, user: Any, actions: Any) -> models.QuerySet:
        """Jobs are not registry objects: access.policy.restrict defers here. A job is
        visible when its feature view is (DESCRIBE); starting and cancelling one is
        decided on the view (WRITE_ONLINE)."""
        from access.policy import restrict
        from catalog.models import FeatureView

        return queryset.filter(feature_view__in=restrict(FeatureView.objects.all(), user, actions))


class MaterializationPartition(models.Model):
    """One slice of a job's work: a time slice of its window, or the entities of one hash
    bucket (`bucket` of `buckets`; 0 of 1 is every entity). Partitions run as separate
    Celery tasks, so N workers share a job; each is idempotent (latest-wins writes).

    `heartbeat_at` is the lease: a task redelivered while another still holds a fresh
    heartbeat waits instead of running the slice twice at once; a stale one is taken over.
    """

    job = models.ForeignKey(MaterializationJob, on_delete=models.CASCADE, related_name="partitions")
    index = models.PositiveIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    bucket = models.PositiveIntegerField(default=0)
    buckets = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.PENDING)
    attempt = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    workers = models.JSONField(default=list, blank=True, help_text="Every worker that ran an attempt, in order.")
    rows_read = models.PositiveBigIntegerField(default=0)
    rows_written = models.PositiveBigIntegerField(default=0)
    rows_skipped = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="materialization_partition_unique")]

    def __str__(self) -> str:
        return f"partition {self.index} of job {self.job_id} ({self.state})"


class ScheduleKind(models.TextChoices):
    CRON = "cron", "cron expression"
    INTERVAL = "interval", "fixed interval"


class ScheduleOrigin(models.TextChoices):
    REPO = "repo", "feature repo"
    ADMIN = "admin", "admin"


class MaterializationSchedule(models.Model):
    """When beat runs `materialize_incremental` for a feature view.

    Backed by a django-celery-beat PeriodicTask kept in step on save and delete
    (materialization.schedules). `origin` says who owns it: a schedule written by the
    feature repo (`schedule:` on the view) is replaced or removed by the next apply;
    one made in the admin survives applies of a repo that says nothing about it.
    """

    feature_view = models.OneToOneField(
        "catalog.FeatureView", on_delete=models.CASCADE, related_name="materialization_schedule"
    )
    kind = models.CharField(max_length=16, choices=ScheduleKind.choices, default=ScheduleKind.INTERVAL)
    cron = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Five fields, UTC: minute hour day-of-month month day-of-week.",
    )
    every_seconds = models.PositiveIntegerField(default=0, help_text="For a fixed interval: seconds between runs.")
    enabled = models.BooleanField(default=True)
    origin = models.CharField(max_length=8, choices=ScheduleOrigin.choices, default=ScheduleOrigin.ADMIN)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["feature_view__project__name", "feature_view__name"]

    def __str__(self) -> str:
        return f"{self.feature_view}: {self.describe()}"

    def describe(self) -> str:
        if self.kind == ScheduleKind.CRON:
            return f"cron {self.cron}"
        from .schedules import format_seconds

        return f"every {format_seconds(self.every_seconds)}"

    def as_repo_dict(self) -> dict[str, Any]:
        """The canonical `schedule:` of the feature repo format (catalog.repo)."""
        if self.kind == ScheduleKind.CRON:
            return {"cron": self.cron, "enabled": self.enabled}
        return {"every": self.every_seconds, "enabled": self.enabled}

    @staticmethod
    def gate_through(queryset: models.QuerySet, user: Any, actions: Any) -> models.QuerySet:
        """A schedule follows its feature view (restrict defers here)."""
        from access.policy import restrict
        from catalog.models import FeatureView

        return queryset.filter(feature_view__in=restrict(FeatureView.objects.all(), user, actions))
