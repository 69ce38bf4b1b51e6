"""Alerts for failed scheduled materializations: a log line, a banner on every page, and
an optional webhook (LARDER_ALERT_WEBHOOK_URL, a JSON POST: Slack-style `text` plus the
job's details).

The banner lists the views whose latest scheduled job failed (a later success clears
it), limited to views the reader may DESCRIBE, so an alert never names a view its
reader could not open.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from .models import JobState, MaterializationJob, Trigger

logger = logging.getLogger("materialization.alerts")
BANNER_LIMIT = 5


def alert_failed_job(job: MaterializationJob) -> None:
    """Raise the alert for a failed scheduled job (other triggers have a caller who sees the error)."""
    if job.trigger != Trigger.SCHEDULE or job.state != JobState.FAILED:
        return
    text = (
        f"Scheduled materialization of {job.project_name}/{job.view_name} failed (job {job.pk}, "
        f"window {job.start.isoformat()} .. {job.end.isoformat()}): {job.error}"
    )
    logger.error("ALERT %s", text)
    MaterializationJob.objects.filter(pk=job.pk).update(alerted_at=timezone.now())
    url = getattr(settings, "LARDER_ALERT_WEBHOOK_URL", "")
    if url:
        send_webhook(url, text, job)


def send_webhook(url: str, text: str, job: MaterializationJob) -> bool:
    """POST the alert as JSON; failures are logged, never raised (the job has failed already)."""
    body = {
        "text": text,
        "job": {
            "id": job.pk,
            "project": job.project_name,
            "feature_view": job.view_name,
            "state": job.state,
            "start": job.start.isoformat(),
            "end": job.end.isoformat(),
            "error": job.error,
        },
    }
    if not url.startswith(("http://", "https://")):
        logger.error("LARDER_ALERT_WEBHOOK_URL must be an http(s) URL; alert not sent")
        return False
    request = urllib.request.Request(  # noqa: S310 - an operator-configured http(s) URL, checked above
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        timeout = float(getattr(settings, "LARDER_ALERT_WEBHOOK_TIMEOUT_SECONDS", 5))
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.error("alert webhook failed: %s", exc)
        return False


def failing_views(user: Any) -> list[MaterializationJob]:
    """Per view the reader may DESCRIBE: its latest scheduled job, when that job failed."""
    visible = MaterializationJob.gate_through(
        MaterializationJob.objects.filter(trigger=Trigger.SCHEDULE), user, ("DESCRIBE",)
    )
    latest = visible.filter(state__in=[JobState.SUCCEEDED, JobState.FAILED]).order_by().values("feature_view_id")
    latest_ids = latest.annotate(last=Max("pk")).values_list("last", flat=True)
    return list(
        MaterializationJob.objects.filter(pk__in=list(latest_ids), state=JobState.FAILED).order_by("-finished_at")[
            :BANNER_LIMIT
        ]
    )


def context_processor(request: HttpRequest) -> dict[str, Any]:
    """`materialization_alerts` for base.html's banner, computed only if a template reads it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"materialization_alerts": []}
    return {"materialization_alerts": SimpleLazyObject(lambda: failing_views(user))}
