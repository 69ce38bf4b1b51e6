"""Partitions at work: the lease (claim, heartbeat, take-over of a dead worker's slice),
progress reports, and finding work nobody does. Used by the Celery tasks and by the
in-process runner in materialization.jobs; no Celery here.

A partition is claimed under a row lock; its heartbeat (`heartbeat_at`) is refreshed at
every progress report (`LARDER_MATERIALIZE_PROGRESS_SECONDS`). Another claim finds a
fresh heartbeat BUSY, and a heartbeat older than `LARDER_MATERIALIZE_STALE_SECONDS` dead:
it takes the partition over (a new attempt, the worker appended to `workers`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from catalog.models import FeatureView

from .engine import Progress, materialize_window
from .errors import JobCancelled
from .models import ACTIVE_STATES, JobState, MaterializationJob, MaterializationPartition
from .planning import Window, check_view

logger = logging.getLogger("materialization")


# -- settings --------------------------------------------------------------------------


def stale_after() -> timedelta:
    """A running partition whose heartbeat is older than this is presumed dead."""
    return timedelta(seconds=float(getattr(settings, "LARDER_MATERIALIZE_STALE_SECONDS", 60)))


def progress_interval() -> float:
    """Seconds between progress (and heartbeat, and cancellation) checks of a partition."""
    return float(getattr(settings, "LARDER_MATERIALIZE_PROGRESS_SECONDS", 1.0))


def testing_delay() -> float:
    """Seconds each partition waits before working: only under LARDER_TESTING (the
    integration tests kill a worker in the middle of a job and need one to be slow)."""
    return float(getattr(settings, "LARDER_MATERIALIZE_TEST_DELAY_SECONDS", 0.0) or 0.0)


def this_worker() -> str:
    """The name recorded on partitions run in-process (Celery tasks pass their hostname)."""
    return f"inline@{socket.gethostname()}:{os.getpid()}"


# -- running a partition ---------------------------------------------------------------------


class Claim(Enum):
    RUN = "run"  # this caller now holds the partition
    DONE = "done"  # already succeeded
    BUSY = "busy"  # another worker holds a fresh lease
    GONE = "gone"  # the job is finished, cancelled or deleted


def claim_partition(partition_id: int, worker: str) -> tuple[Claim, MaterializationPartition | None]:
    """Take the partition for `worker` unless it is done, its job is over, or another
    worker's lease on it is fresh. A stale lease (dead worker) is taken over."""
    now = timezone.now()
    with transaction.atomic():
        partition = (
            MaterializationPartition.objects.select_for_update().select_related("job").filter(pk=partition_id).first()
        )
        if partition is None or partition.job.state not in ACTIVE_STATES:
            return Claim.GONE, partition
        if partition.state == JobState.SUCCEEDED:
            return Claim.DONE, partition
        fresh = partition.heartbeat_at is not None and now - partition.heartbeat_at < stale_after()
        if partition.state == JobState.RUNNING and fresh:
            return Claim.BUSY, partition
        if partition.state == JobState.RUNNING:
            logger.warning(
                "materialization job %s partition %s: taking over from %s (no heartbeat since %s)",
                partition.job_id,
                partition.index,
                partition.worker,
                partition.heartbeat_at,
            )
        partition.state = JobState.RUNNING
        partition.attempt += 1
        partition.worker = worker[:255]
        partition.workers = [*partition.workers, worker]
        partition.started_at = partition.heartbeat_at = now
        partition.finished_at = None
        partition.rows_read = partition.rows_written = partition.rows_skipped = 0
        partition.save()
        job = partition.job
        updates: dict[str, Any] = {"attempt": max(job.attempt, partition.attempt)}
        if job.state == JobState.PENDING:
            updates.update(state=JobState.RUNNING, started_at=now)
        MaterializationJob.objects.filter(pk=job.pk, state__in=ACTIVE_STATES).update(**updates)
    return Claim.RUN, partition


class _Reporter:
    """The progress callback of one partition run: writes counts, heartbeat and the
    job's totals at most every `progress_interval()` seconds, and raises JobCancelled
    when the job is no longer active (cancelled, or failed by another partition)."""

    def __init__(self, partition: MaterializationPartition, on_progress: Callable[[Progress], None] | None) -> None:
        self.partition = partition
        self.on_progress = on_progress
        self.interval = progress_interval()
        self.last = 0.0
        self.progress = Progress()

    def __call__(self, progress: Progress, force: bool = False) -> None:
        self.progress = progress
        if self.on_progress is not None:
            self.on_progress(progress)
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        self.flush()

    def flush(self) -> None:
        p = self.progress
        MaterializationPartition.objects.filter(pk=self.partition.pk, state=JobState.RUNNING).update(
            rows_read=p.rows_read, rows_written=p.rows_written, rows_skipped=p.rows_skipped, heartbeat_at=timezone.now()
        )
        if not refresh_totals(self.partition.job_id):
            raise JobCancelled(f"job {self.partition.job_id} is no longer running")

    def wait(self, seconds: float) -> None:
        """Sleep in short steps, keeping the heartbeat fresh and noticing cancellation."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.2, left))
            self(self.progress)


def refresh_totals(job_id: int) -> bool:
    """Copy the partitions' sums onto the active job; False when the job is not active."""
    sums = MaterializationPartition.objects.filter(job_id=job_id).aggregate(
        rows_read=Sum("rows_read"), rows_written=Sum("rows_written"), rows_skipped=Sum("rows_skipped")
    )
    totals = {k: v or 0 for k, v in sums.items()}
    return bool(MaterializationJob.objects.filter(pk=job_id, state__in=ACTIVE_STATES).update(**totals))


def execute_partition(
    partition: MaterializationPartition, on_progress: Callable[[Progress], None] | None = None
) -> Progress:
    """Run a claimed partition's slice through the engine and mark it SUCCEEDED.

    Engine and store errors propagate (the caller decides: retry or fail); JobCancelled
    propagates after the partition is marked CANCELLED."""
    from serving.offline.registry import engine_for
    from serving.offline.specs import view_spec
    from serving.online import get_online_store

    job = partition.job
    reporter = _Reporter(partition, on_progress)
    try:
        if testing_delay() > 0:
            reporter.wait(testing_delay())
        view = FeatureView.objects.select_related("project", "source", "source__batch_source").get(
            pk=job.feature_view_id
        )
        check_view(view)
        spec = view_spec(view)
        progress = materialize_window(
            spec,
            Window(partition.start, partition.end),
            offline=engine_for(spec.source),
            store=get_online_store(),
            on_progress=reporter,
            bucket=(partition.bucket, partition.buckets) if partition.buckets > 1 else None,
        )
        reporter.progress = progress
    except JobCancelled:
        _set_partition(partition.pk, JobState.CANCELLED, reporter.progress)
        raise
    _set_partition(partition.pk, JobState.SUCCEEDED, progress)
    return progress


def _set_partition(partition_id: int, state: str, progress: Progress, error: str = "") -> None:
    MaterializationPartition.objects.filter(pk=partition_id).exclude(state=JobState.SUCCEEDED).update(
        state=state,
        rows_read=progress.rows_read,
        rows_written=progress.rows_written,
        rows_skipped=progress.rows_skipped,
        error=error,
        heartbeat_at=timezone.now(),
        finished_at=timezone.now(),
    )


def release_partition(partition_id: int, error: str) -> None:
    """Give a claimed partition back (a transient error: the retry will claim it again)."""
    MaterializationPartition.objects.filter(pk=partition_id, state=JobState.RUNNING).update(
        state=JobState.PENDING, error=error[:4000], heartbeat_at=None
    )


# -- finding stalled work --------------------------------------------------------------------


def stalled_partitions(now: datetime | None = None) -> list[int]:
    """Partitions of active jobs that nobody is working on: running with a stale
    heartbeat (a dead worker, or a lost message on a broker without redelivery), or
    pending with no claim long after their job was created (a lost message)."""
    now = now or timezone.now()
    requeue_after = timedelta(seconds=float(getattr(settings, "LARDER_MATERIALIZE_REQUEUE_SECONDS", 300)))
    return list(
        MaterializationPartition.objects.filter(job__state__in=ACTIVE_STATES)
        .filter(
            Q(state=JobState.RUNNING, heartbeat_at__lt=now - stale_after())
            | Q(state=JobState.PENDING, job__created_at__lt=now - requeue_after)
        )
        .values_list("pk", flat=True)
    )


def unfinalized_jobs() -> list[int]:
    """Active jobs whose partitions all succeeded but whose final step never ran."""
    return [
        job.pk
        for job in MaterializationJob.objects.filter(state__in=ACTIVE_STATES).only("pk", "partitions_total")
        if job.partitions.filter(state=JobState.SUCCEEDED).count() >= job.partitions_total
    ]
