"""Celery tasks of historical retrieval (thin: the work is in serving.historical.jobs).

Found by larder/celery.py's autodiscovery (`serving.historical` is listed there).
"""

from __future__ import annotations

from celery import shared_task

from . import jobs


@shared_task(name="serving.historical.run_job", acks_late=True, reject_on_worker_lost=True)
def run_historical_job(job_id: str) -> str:
    """Run one job; a finished or deleted job is left alone (a redelivered message is harmless)."""
    job = jobs.claim(job_id)
    if job is None:
        return "skipped"
    jobs.execute(job)
    return job.state


@shared_task(name="serving.historical.cleanup_expired_results")
def cleanup_expired_results() -> int:
    """Delete expired job results (beat runs it hourly; also `manage.py cleanup_historical_results`)."""
    return jobs.cleanup_expired()
