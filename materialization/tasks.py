"""Celery tasks of materialization: thin, taking ids, idempotent, acknowledged late.

    dispatch(job)                    queue one `materialize_partition` per unfinished partition
                                     (a Celery group), after the job's transaction commits
    materialize_partition(id)        claim, run the slice, and (last one) finalize the job
    scheduled_materialize(view_id)   beat's entry point: materialize_incremental for one view
    recover_stalled()                beat, every minute: requeue partitions nobody works on

Why the final step is not a chord callback: a chord needs a result backend (the demo's
broker has none) and its unlock is lost with a killed worker. Here the last partition
to succeed runs `jobs.finalize` under a lock on the job row, and a redelivered or
requeued partition that finds its work done runs it again, so the interval is recorded
exactly once whatever dies when.

Crash safety: tasks are acknowledged after they finish (acks_late, reject on worker
lost), so a partition whose worker is killed is redelivered (Redis: after the broker's
visibility timeout) and taken over once its heartbeat is stale. Writes are latest-wins,
so running a slice twice writes nothing that matters.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import group, shared_task
from django.conf import settings
from django.db import IntegrityError, transaction

from serving.online import OnlineStoreUnavailable

from . import jobs
from .errors import AlreadyRunning, JobCancelled, MaterializationError
from .models import MaterializationJob, Trigger

logger = logging.getLogger("materialization")

# Errors worth retrying: the online store is unreachable right now. Everything else
# (offline engine errors, bad rows, a store refusing a value) fails the job at once, with
# the error shown; a scheduled view tries again at its next tick anyway.
TRANSIENT = (OnlineStoreUnavailable, ConnectionError, TimeoutError)
TASK_OPTIONS: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}


def _max_retries() -> int:
    return int(getattr(settings, "LARDER_MATERIALIZE_MAX_RETRIES", 5))


def _backoff(retries: int) -> float:
    """Exponential backoff with a cap: 2, 4, 8 ... seconds, at most LARDER_MATERIALIZE_RETRY_MAX_SECONDS."""
    base = float(getattr(settings, "LARDER_MATERIALIZE_RETRY_BASE_SECONDS", 2))  # tests set 0
    cap = float(getattr(settings, "LARDER_MATERIALIZE_RETRY_MAX_SECONDS", 60))
    return min(cap, base * (2**retries))


def dispatch(job: MaterializationJob) -> None:
    """Queue the job's unfinished partitions as one Celery group, once the surrounding
    transaction (if any) has committed, so no worker looks for rows not yet visible."""
    ids = list(job.partitions.exclude(state="SUCCEEDED").order_by("index").values_list("pk", flat=True))

    def send() -> None:
        group(materialize_partition.si(pk) for pk in ids).apply_async()

    transaction.on_commit(send)


@shared_task(bind=True, name="materialization.materialize_partition", max_retries=None, **TASK_OPTIONS)
def materialize_partition(self: Any, partition_id: int) -> str:
    """Run one partition: the unit N workers share. Returns what happened (for logs)."""
    worker = self.request.hostname or jobs.this_worker()
    claim, partition = jobs.claim_partition(partition_id, worker)
    if claim == jobs.Claim.GONE:
        return "gone"
    if claim == jobs.Claim.DONE:
        jobs.finalize(partition.job_id)
        return "done"
    if claim == jobs.Claim.BUSY:
        # Another worker holds a fresh lease (a redelivery while it runs): look again once
        # its lease could have gone stale, in a new message, so this one can be acknowledged.
        if not self.app.conf.task_always_eager:  # eagerly, that would recurse at once
            materialize_partition.apply_async((partition_id,), countdown=jobs.stale_after().total_seconds())
        return "busy"
    try:
        jobs.execute_partition(partition)
    except JobCancelled:
        return "cancelled"
    except TRANSIENT as exc:
        attempt = self.request.retries
        error = jobs.describe_error(exc, partition)
        if attempt >= _max_retries():
            jobs.fail_job(partition.job_id, f"{error} (gave up after {attempt + 1} attempts)", partition.pk)
            return "failed"
        jobs.release_partition(partition.pk, f"retrying: {error}")
        countdown = _backoff(attempt)
        logger.warning("materialization partition %s: %s; retry in %.0f s", partition_id, error, countdown)
        raise self.retry(exc=exc, countdown=countdown) from None
    except Exception as exc:  # permanent: bad data, bad definition, a store refusing the rows
        logger.exception("materialization partition %s failed", partition_id)
        jobs.fail_job(partition.job_id, jobs.describe_error(exc, partition), partition.pk)
        return "failed"
    jobs.finalize(partition.job_id)
    return "succeeded"


@shared_task(name="materialization.scheduled_materialize", **TASK_OPTIONS)
def scheduled_materialize(feature_view_id: int) -> str:
    """materialize_incremental(now) for one view, started by beat. A view that is still
    materializing is skipped (the next tick catches up); a view that cannot be
    materialized any more gets a FAILED job, which raises the alert."""
    from django.utils import timezone

    from catalog.models import FeatureView

    view = FeatureView.objects.select_related("project", "source").filter(pk=feature_view_id).first()
    if view is None:
        logger.warning("scheduled materialization: feature view %s no longer exists", feature_view_id)
        return "gone"
    now = timezone.now()
    try:
        requests, _ = jobs.plan_requests([view], end=now, incremental=True, now=now)
        if not requests:
            return "up to date"
        (job,) = jobs.create_jobs(requests, trigger=Trigger.SCHEDULE)
    except AlreadyRunning as exc:
        logger.info("scheduled materialization of %s skipped: %s", view, exc)
        return "busy"
    except MaterializationError as exc:
        job = record_failed_schedule(view, now, str(exc))
        return f"failed: job {job.pk if job else '-'}"
    dispatch(job)
    return f"job {job.pk}"


def record_failed_schedule(view: Any, now: Any, error: str) -> MaterializationJob | None:
    """A FAILED job for a scheduled run that could not start, so the failure shows on the
    jobs page and raises the alert like any other."""
    job = MaterializationJob(
        feature_view=view,
        project_name=view.project.name,
        view_name=view.name,
        start=now,
        end=now,
        incremental=True,
        trigger=Trigger.SCHEDULE,
        state="RUNNING",
        partitions_total=0,
    )
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError:  # another run of the view started meanwhile: it will speak for itself
        logger.error("scheduled materialization of %s failed: %s", view, error)
        return None
    return jobs.fail_job(job.pk, error)


@shared_task(name="materialization.recover_stalled", **TASK_OPTIONS)
def recover_stalled() -> dict[str, int]:
    """Requeue partitions nobody works on and finish jobs whose final step was lost
    (covers brokers without redelivery, like the demo's filesystem broker)."""
    finished = 0
    for job_id in jobs.unfinalized_jobs():
        jobs.finalize(job_id)
        finished += 1
    stalled = jobs.stalled_partitions()
    for pk in stalled:
        materialize_partition.delay(pk)
    if stalled or finished:
        logger.warning(
            "materialization recovery: %d partition(s) requeued, %d job(s) finalized",
            len(stalled),
            finished,
        )
    return {"requeued": len(stalled), "finalized": finished}
