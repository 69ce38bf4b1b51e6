"""Materialization jobs as database state: start, claim, progress, finish, cancel.

No Celery here either: tasks.py calls these functions with ids, and so do the
synchronous paths (the command line, `POST /materialize` without `?async`), which run
a job's partitions one after the other in their own process. The job row is the truth;
every step re-reads it, so any step may run twice (a redelivered message) without harm.

Lifecycle: `create_jobs` inserts PENDING jobs and their partitions (the partial unique
index refuses a second active job for a view: AlreadyRunning); a partition is claimed
(a lease kept fresh by heartbeats), streams its slice through the engine and is marked
SUCCEEDED (materialization.partitions); the last partition to succeed records the
view's MaterializationInterval and the job's SUCCEEDED (`finalize`). A permanent error
fails the job (the other partitions stop at their next progress report), `cancel_job`
cancels it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from catalog.models import FeatureView, MaterializationInterval

from .engine import Progress
from .errors import AlreadyRunning, JobCancelled, MaterializationError, NotMaterializable
from .models import ACTIVE_STATES, JobState, MaterializationJob, MaterializationPartition, Trigger
from .partitions import (  # re-exported: callers speak of jobs
    Claim,
    claim_partition,
    execute_partition,
    progress_interval,
    release_partition,
    stale_after,
    stalled_partitions,
    this_worker,
    unfinalized_jobs,
)
from .planning import Window, check_view, check_window, incremental_window, plan_slices

logger = logging.getLogger("materialization")
__all__ = [
    "Claim",
    "JobCancelled",
    "Request",
    "cancel_job",
    "claim_partition",
    "create_jobs",
    "describe_error",
    "execute_partition",
    "fail_job",
    "finalize",
    "plan_requests",
    "progress_interval",
    "release_partition",
    "resolve_views",
    "run_job_inline",
    "stale_after",
    "stalled_partitions",
    "this_worker",
    "unfinalized_jobs",
]


# -- starting ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One view's share of a materialize call: the view and its window."""

    feature_view: FeatureView
    window: Window
    incremental: bool = False


def plan_requests(
    views: Sequence[FeatureView],
    *,
    start: datetime | None = None,
    end: datetime,
    incremental: bool = False,
    now: datetime | None = None,
) -> tuple[list[Request], list[FeatureView]]:
    """The requests for `views`, and the views an incremental run finds up to date.

    Checks every view and the window before anything is written (one bad view fails
    the whole call, as in Feast)."""
    for view in views:
        check_view(view)
    requests: list[Request] = []
    up_to_date: list[FeatureView] = []
    if not incremental:
        if start is None:
            raise MaterializationError("start is required")
        window = check_window(start, end)
        return [Request(v, window) for v in views], up_to_date
    check_window(end, end)  # reads and normalises `end`
    for view in views:
        window = incremental_window(view, end, now)
        if window is None:
            up_to_date.append(view)
        else:
            requests.append(Request(view, window, incremental=True))
    return requests, up_to_date


def create_jobs(
    requests: Iterable[Request],
    *,
    trigger: str = Trigger.API,
    user: Any = None,
    partitions: int | None = None,
    partition_by: str | None = None,
) -> list[MaterializationJob]:
    """Insert one PENDING job (and its partitions: `partitions` time slices or entity
    buckets, planning.plan_slices) per request, all or none.

    AlreadyRunning (409) names every view that has an active job; nothing is created then.
    """
    requests = list(requests)
    plans = [plan_slices(r.window, partitions, partition_by) for r in requests]  # InvalidWindow before any write
    busy = list(
        MaterializationJob.objects.filter(
            feature_view__in=[r.feature_view for r in requests], state__in=ACTIVE_STATES
        ).values_list("pk", "view_name")
    )
    if busy:
        raise _already_running(busy)
    jobs = []
    try:
        with transaction.atomic():
            for request, slices in zip(requests, plans, strict=True):
                jobs.append(_create_job(request, slices, trigger, user))
    except IntegrityError:  # lost a race with another process starting the same view
        busy = list(
            MaterializationJob.objects.filter(
                feature_view__in=[r.feature_view for r in requests], state__in=ACTIVE_STATES
            ).values_list("pk", "view_name")
        )
        raise _already_running(busy) from None
    return jobs


def _already_running(busy: list[tuple[int, str]]) -> AlreadyRunning:
    views = sorted({name for _, name in busy})
    ids = sorted(pk for pk, _ in busy)
    listed = ", ".join(f"{name} (job {pk})" for pk, name in sorted(busy, key=lambda b: b[1]))
    return AlreadyRunning(
        f"feature view(s) already materializing: {listed}; wait for the job to finish or cancel it", views, ids
    )


def _create_job(request: Request, slices: list[Any], trigger: str, user: Any) -> MaterializationJob:
    view, window = request.feature_view, request.window
    with transaction.atomic():  # a savepoint: the unique index may refuse this one
        job = MaterializationJob.objects.create(
            feature_view=view,
            project_name=view.project.name,
            view_name=view.name,
            start=window.start,
            end=window.end,
            incremental=request.incremental,
            trigger=trigger,
            requested_by=user if getattr(user, "pk", None) else None,
            partitions_total=len(slices),
        )
        MaterializationPartition.objects.bulk_create(
            MaterializationPartition(
                job=job, index=i, start=s.window.start, end=s.window.end, bucket=s.bucket, buckets=s.buckets
            )
            for i, s in enumerate(slices)
        )
    return job


# -- finishing -------------------------------------------------------------------------------


def finalize(job_id: int) -> MaterializationJob | None:
    """The final step: when every partition has succeeded, record the view's interval
    and mark the job SUCCEEDED (once, under a lock on the job row). Returns the job."""
    with transaction.atomic():
        job = MaterializationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in ACTIVE_STATES:
            return job
        done = job.partitions.filter(state=JobState.SUCCEEDED).count()
        sums = job.partitions.aggregate(
            rows_read=Sum("rows_read"), rows_written=Sum("rows_written"), rows_skipped=Sum("rows_skipped")
        )
        for key, value in sums.items():
            setattr(job, key, value or 0)
        job.partitions_done = done
        if done < job.partitions_total:
            job.save(update_fields=["partitions_done", "rows_read", "rows_written", "rows_skipped"])
            return job
        job.interval = MaterializationInterval.objects.create(
            feature_view_id=job.feature_view_id, start=job.start, end=job.end
        )
        job.state = JobState.SUCCEEDED
        job.finished_at = timezone.now()
        job.error = ""
        job.save()
    logger.info(
        "materialized %s/%s [%s .. %s]: %d rows read, %d written (job %s)",
        job.project_name,
        job.view_name,
        job.start.isoformat(),
        job.end.isoformat(),
        job.rows_read,
        job.rows_written,
        job.pk,
    )
    return job


def fail_job(job_id: int, error: str, partition_id: int | None = None) -> MaterializationJob | None:
    """Mark the job (and the failing partition) FAILED with `error`; raise the alert of a
    scheduled job. Idempotent: a job already over is left as it is."""
    from .alerts import alert_failed_job

    with transaction.atomic():
        job = MaterializationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in ACTIVE_STATES:
            return job
        now = timezone.now()
        if partition_id is not None:
            MaterializationPartition.objects.filter(pk=partition_id).update(
                state=JobState.FAILED, error=error[:4000], finished_at=now
            )
        job.partitions.filter(state__in=ACTIVE_STATES).exclude(pk=partition_id).update(state=JobState.CANCELLED)
        job.state = JobState.FAILED
        job.error = error[:4000]
        job.finished_at = now
        job.save(update_fields=["state", "error", "finished_at"])
    logger.error("materialization job %s (%s/%s) failed: %s", job.pk, job.project_name, job.view_name, error)
    alert_failed_job(job)
    return job


def cancel_job(job: MaterializationJob) -> bool:
    """Cancel an active job: its lock is released at once; running partitions stop at
    their next progress tick. False when the job was already over."""
    with transaction.atomic():
        now = timezone.now()
        changed = MaterializationJob.objects.filter(pk=job.pk, state__in=ACTIVE_STATES).update(
            state=JobState.CANCELLED, finished_at=now, error="cancelled"
        )
        if changed:
            MaterializationPartition.objects.filter(job_id=job.pk, state__in=ACTIVE_STATES).update(
                state=JobState.CANCELLED, finished_at=now
            )
    if changed:
        logger.info("materialization job %s (%s/%s) cancelled", job.pk, job.project_name, job.view_name)
    job.refresh_from_db()
    return bool(changed)


# -- running a whole job in this process -------------------------------------------------------


def run_job_inline(
    job: MaterializationJob, on_progress: Callable[[MaterializationJob, Progress], None] | None = None
) -> MaterializationJob:
    """Run every partition of `job` here, one after the other, then finalize (the
    synchronous paths). Permanent and transient errors alike fail the job."""
    worker = this_worker()
    for partition_id in job.partitions.order_by("index").values_list("pk", flat=True):
        claim, partition = claim_partition(partition_id, worker)
        if claim == Claim.GONE:
            break
        if claim != Claim.RUN:
            continue
        callback = (lambda p, _job=job: on_progress(_job, p)) if on_progress else None
        try:
            execute_partition(partition, callback)
        except JobCancelled:
            break
        except Exception as exc:  # engines, stores and bad data: the job shows the error
            fail_job(job.pk, describe_error(exc, partition), partition.pk)
            break
        finalize(job.pk)  # counts the finished partition (and, after the last, records the interval)
    result = finalize(job.pk)
    return result if result is not None else job


def describe_error(exc: BaseException, partition: MaterializationPartition | None = None) -> str:
    where = ""
    if partition is not None:
        where = f"partition {partition.index} [{partition.start.isoformat()} .. {partition.end.isoformat()}"
        where += f", entity bucket {partition.bucket} of {partition.buckets}]: " if partition.buckets > 1 else "]: "
    return f"{where}{type(exc).__name__}: {exc}"


def resolve_views(project: Any, names: Sequence[str] | None) -> list[FeatureView]:
    """Feature views of `project` by name (all online views when `names` is None).

    NotMaterializable names a view that does not exist (the API gates before this)."""
    queryset = FeatureView.objects.filter(project=project).select_related("project", "source")
    if names is None:
        return list(queryset.filter(online=True).order_by("name"))
    found = {v.name: v for v in queryset.filter(name__in=list(names))}
    missing = [n for n in names if n not in found]
    if missing:
        raise NotMaterializable(f"feature view(s) {', '.join(missing)} do not exist in project {project.name}")
    return [found[n] for n in dict.fromkeys(names)]
