"""Historical jobs: queued by the API, run by a Celery worker (serving.historical.tasks).

The API writes the checked entity rows to LARDER_DATA_DIR/results/<id>.entities.parquet
and queues the job once its row is committed. The worker plans the request again as the
job's owner (the gate is asked again: a permission withdrawn meanwhile fails the job),
joins the entity rows chunk by chunk (LARDER_HISTORICAL_CHUNK_ROWS; progress after each
chunk, memory bounded by one chunk), writes the result to <id>.parquet (a temporary
file renamed at the end), saves it as a SavedDataset when asked, and marks the job done.
The result is kept LARDER_HISTORICAL_RESULT_TTL_HOURS after the job finishes.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.db import transaction

from serving.errors import ServingError
from serving.offline.base import OfflineError

from .build import build_in_chunks
from .models import HistoricalJob, results_dir
from .request import HistoricalRequest, SaveAs
from .resolve import HistoricalPlan, plan_request
from .saved import save_dataset

logger = logging.getLogger("serving.historical")


def job_params(req: HistoricalRequest) -> dict[str, Any]:
    """What the worker needs to plan the request again."""
    return {
        "project": req.project,
        "features": req.features,
        "feature_service": req.feature_service,
        "full_feature_names": req.full_feature_names,
        "format": req.format,
        "save_as": None if req.save_as is None else vars(req.save_as),
    }


def create_job(user: Any, req: HistoricalRequest, entity: pa.Table) -> HistoricalJob:
    """A PENDING job with its entity rows on disk, queued when the transaction commits."""
    from .tasks import run_historical_job

    job = HistoricalJob(project=req.project, user=user, request=req.record, params=job_params(req))
    job.rows_total = entity.num_rows
    job.message = "queued"
    results_dir().mkdir(parents=True, exist_ok=True)
    pq.write_table(entity, job.entity_path)
    job.save()
    job_id = str(job.id)

    def enqueue() -> None:
        try:
            run_historical_job.delay(job_id)
        except Exception as exc:  # the broker is down: say so on the job rather than leave it PENDING
            logger.exception("historical job %s could not be queued", job_id)
            _fail(job, f"could not be queued: {type(exc).__name__}: {exc}")

    transaction.on_commit(enqueue)
    return job


def _update(job: HistoricalJob, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    HistoricalJob.objects.filter(pk=job.pk).update(**fields)


def claim(job_id: str) -> HistoricalJob | None:
    """The job, marked RUNNING, if it is still to run (PENDING, or RUNNING from a worker
    that died: acks_late redelivers it); None when it is finished or gone (idempotent)."""
    with transaction.atomic():
        job = HistoricalJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None
        job.state = HistoricalJob.State.RUNNING
        job.started_at = datetime.now(UTC)
        job.rows_done = 0
        job.message = "planning"
        job.save(update_fields=["state", "started_at", "rows_done", "message"])
    return job


def _plan(job: HistoricalJob) -> HistoricalPlan:
    p = job.params
    return plan_request(job.user, p["project"], p.get("features"), p.get("feature_service"), p["full_feature_names"])


def execute(job: HistoricalJob) -> None:
    """Run a claimed job to SUCCEEDED or FAILED (never raises for the job's own errors)."""
    try:
        result = _run(job)
    except (OfflineError, ServingError, PermissionError, ValueError) as exc:
        _fail(job, _message(exc))
        return
    except Exception as exc:
        logger.exception("historical job %s failed", job.pk)
        _fail(job, f"{type(exc).__name__}: {exc}")
        return
    finished = datetime.now(UTC)
    _update(
        job,
        state=HistoricalJob.State.SUCCEEDED,
        result_path=str(result),
        rows_done=job.rows_total,
        message=f"done: {job.rows_total} rows",
        finished_at=finished,
        expires_at=job.expiry_after(finished),
    )
    job.entity_path.unlink(missing_ok=True)


def _message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def _fail(job: HistoricalJob, error: str) -> None:
    finished = datetime.now(UTC)
    _update(
        job,
        state=HistoricalJob.State.FAILED,
        error=error,
        message="failed",
        finished_at=finished,
        expires_at=job.expiry_after(finished),
    )
    job.entity_path.unlink(missing_ok=True)


def _run(job: HistoricalJob) -> Path:
    from django.core.exceptions import PermissionDenied

    try:
        plan = _plan(job)
    except PermissionDenied as exc:
        raise PermissionError(str(exc)) from exc
    entity = pq.read_table(job.entity_path)
    _update(job, rows_total=entity.num_rows, message="joining")
    target = job.default_result_path
    fd, tmp = tempfile.mkstemp(prefix=f".{job.pk}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    writer: pq.ParquetWriter | None = None
    try:
        for done, table in build_in_chunks(plan, entity, settings.LARDER_HISTORICAL_CHUNK_ROWS):
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            _update(job, rows_done=done, message=f"joined {done} of {entity.num_rows} rows")
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, target)
    finally:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
    save = job.params.get("save_as")
    if save:
        _update(job, message="saving the dataset")
        save_dataset(job.user, plan, SaveAs(**save), job.request, parquet_path=target)
    return target


def cleanup_expired(now: datetime | None = None) -> int:
    """Delete the result files of expired jobs, and result files no job knows (left by a
    crash); returns how many files were removed. Job rows stay (their status says expired)."""
    now = now or datetime.now(UTC)
    removed = 0
    for job in HistoricalJob.objects.filter(expires_at__lte=now).exclude(result_path=""):
        if Path(job.result_path).exists():
            Path(job.result_path).unlink()
            removed += 1
        HistoricalJob.objects.filter(pk=job.pk).update(result_path="")
    folder = results_dir()
    if folder.is_dir():
        known = {str(pk) for pk in HistoricalJob.objects.filter(expires_at__gt=now).values_list("pk", flat=True)}
        known |= {str(pk) for pk in HistoricalJob.objects.filter(expires_at__isnull=True).values_list("pk", flat=True)}
        ttl = settings.LARDER_HISTORICAL_RESULT_TTL_HOURS * 3600
        for path in folder.iterdir():
            job_id = path.name.lstrip(".").split(".", 1)[0]
            if job_id in known or now.timestamp() - path.stat().st_mtime < ttl:
                continue
            path.unlink(missing_ok=True)
            removed += 1
    return removed
