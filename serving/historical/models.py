"""The HistoricalJob model: a training set built by a Celery worker.

Lives in the `serving` app (imported by serving/models.py); its migration is
serving/migrations/0002.
"""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models


def results_dir() -> Path:
    """Where job results (and the entity rows they were asked for) are kept."""
    return Path(settings.LARDER_DATA_DIR) / "results"


class HistoricalJob(models.Model):
    """One asynchronous historical retrieval: who asked, the exact request, progress,
    and where the result is. Only its owner (or a superuser) sees it."""

    class State(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="historical_jobs")
    request = models.JSONField(default=dict, help_text="The request as received, for reproducibility.")
    params = models.JSONField(
        default=dict, help_text="The request as checked: project, features or service, names, format, save_as."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    rows_total = models.PositiveBigIntegerField(default=0)
    rows_done = models.PositiveBigIntegerField(default=0)
    message = models.CharField(max_length=1024, blank=True, default="")
    result_path = models.CharField(max_length=1024, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"historical job {self.id} ({self.state})"

    @property
    def entity_path(self) -> Path:
        """The entity rows the job joins, written by the API before the job is queued."""
        return results_dir() / f"{self.id}.entities.parquet"

    @property
    def default_result_path(self) -> Path:
        return results_dir() / f"{self.id}.parquet"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.SUCCEEDED, self.State.FAILED)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    def expiry_after(self, finished: datetime) -> datetime:
        return finished + timedelta(hours=settings.LARDER_HISTORICAL_RESULT_TTL_HOURS)

    @staticmethod
    def gate_through(queryset: models.QuerySet, user: Any, actions: Any) -> models.QuerySet:
        """Jobs are not registry objects: access.policy.restrict defers here. A job is
        visible to its owner and to superusers, whatever the action."""
        if user is None or not user.is_authenticated:
            return queryset.none()
        if user.is_superuser:
            return queryset
        return queryset.filter(user=user)
