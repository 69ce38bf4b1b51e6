"""The jobs page: materialization jobs with live progress (htmx polls the table), filters by
view and state, a cancel button, and "materialize now" for a view.

Gate: the jobs listed are those of views the user may DESCRIBE (restrict); cancelling
and starting need WRITE_ONLINE on the view (authorize). A job of a hidden view answers
404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from access.actions import Action
from access.policy import authorize, is_allowed, restrict
from catalog.models import FeatureView

from . import jobs
from .api import visible_job
from .errors import AlreadyRunning, MaterializationError
from .models import ACTIVE_STATES, JobState, MaterializationJob, Trigger
from .tasks import dispatch

PAGE_SIZE = 50
POLL_ACTIVE = "1s"
POLL_IDLE = "5s"


def _filters(request: HttpRequest) -> dict[str, str]:
    state = (request.GET.get("state") or "").upper()
    return {
        "view": (request.GET.get("view") or "").strip(),
        "state": state if state in JobState.values else "",
    }


def _table_context(request: HttpRequest) -> dict[str, Any]:
    filters = _filters(request)
    visible = restrict(MaterializationJob.objects.all(), request.user, Action.DESCRIBE)
    if filters["view"]:
        visible = visible.filter(view_name=filters["view"])
    if filters["state"]:
        visible = visible.filter(state=filters["state"])
    page = list(visible.order_by("-created_at", "-id")[:PAGE_SIZE])
    view_ids = {j.feature_view_id for j in page}
    cancellable = set(
        restrict(FeatureView.objects.filter(pk__in=view_ids), request.user, Action.WRITE_ONLINE).values_list(
            "pk", flat=True
        )
    )
    active = any(j.state in ACTIVE_STATES for j in page)
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return {
        "jobs": page,
        "cancellable": cancellable,
        "filters": filters,
        "poll": POLL_ACTIVE if active else POLL_IDLE,
        "table_url": reverse("materialization:jobs-table") + (f"?{query}" if query else ""),
    }


@login_required
@require_GET
def jobs_page(request: HttpRequest) -> HttpResponse:
    context = _table_context(request)
    visible_views = restrict(FeatureView.objects.select_related("project"), request.user, Action.DESCRIBE)
    context.update(
        {
            "states": JobState.values,
            "view_names": sorted(set(visible_views.values_list("name", flat=True))),
            "runnable": list(
                restrict(visible_views.filter(online=True), request.user, Action.WRITE_ONLINE).order_by(
                    "project__name", "name"
                )
            ),
        }
    )
    return render(request, "materialization/jobs.html", context)


@login_required
@require_GET
def jobs_table(request: HttpRequest) -> HttpResponse:
    """The table alone, for htmx polling."""
    return render(request, "materialization/_jobs_table.html", _table_context(request))


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = visible_job(request.user, job_id)
    context = {
        "job": job,
        "partitions": list(job.partitions.order_by("index")),
        "can_cancel": job.is_active and is_allowed(request.user, Action.WRITE_ONLINE, job.feature_view),
        "poll": POLL_ACTIVE if job.is_active else "",
    }
    template = "materialization/_job_body.html" if request.headers.get("HX-Request") else "materialization/job.html"
    return render(request, template, context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = visible_job(request.user, job_id)
    authorize(request.user, Action.WRITE_ONLINE, job.feature_view)
    if jobs.cancel_job(job):
        messages.success(request, f"Job {job.pk} ({job.view_name}) cancelled.")
    else:
        messages.info(request, f"Job {job.pk} had already finished ({job.state.lower()}).")
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("materialization:jobs")
    return redirect(target)


@login_required
@require_POST
def run_incremental(request: HttpRequest) -> HttpResponse:
    """Start materialize_incremental(now) for one view, on the workers."""
    try:
        view_id = int(request.POST.get("feature_view", ""))
    except ValueError:
        raise Http404("no such feature view") from None
    view = restrict(
        FeatureView.objects.select_related("project", "source").filter(pk=view_id), request.user, Action.DESCRIBE
    ).first()
    if view is None:
        raise Http404("no such feature view")
    authorize(request.user, Action.WRITE_ONLINE, view)
    now = timezone.now()
    try:
        requests, _ = jobs.plan_requests([view], end=now, incremental=True, now=now)
        created = jobs.create_jobs(requests, trigger=Trigger.UI, user=request.user)
    except AlreadyRunning as exc:
        messages.warning(request, str(exc))
        return redirect("materialization:jobs")
    except MaterializationError as exc:
        messages.error(request, str(exc))
        return redirect("materialization:jobs")
    if not created:
        messages.info(request, f"{view.name} is already materialized up to now.")
    for job in created:
        dispatch(job)
        messages.success(request, f"Job {job.pk} started: {view.name} from {job.start:%Y-%m-%d %H:%M} UTC.")
    return redirect("materialization:jobs")
