"""Materialization over HTTP.

Feast's feature-server endpoints (feast-reference §5.1), at the root:

    POST /materialize              {"start_ts", "end_ts", "feature_views": [...] | null,
                                    "disable_event_timestamp": false}
    POST /materialize-incremental  {"end_ts", "feature_views": [...] | null}

Synchronous by default (the jobs run in this request; 200 `null` as Feast);
`?async=true` queues them on Celery and answers 202 `{"status": "accepted",
"feature_views": [...], "jobs": [ids]}`. A view that already has a running job: 409
`{"error", "feature_views", "jobs"}` and nothing is started. Larder extensions in the
body: `project` (else ?project=, LARDER_SERVING_PROJECT, or the only project),
`partitions` (how many per view; default from the window's length) and `partition_by`
(`time` slices or `entity` hash buckets; materialization.planning).

`feature_views: null` means every online view of the project the caller may
WRITE_ONLINE; a named view needs WRITE_ONLINE (403 naming it), and one the caller may
not see answers 404 like a missing one.

The job REST API, under /api/v1/ (the registry API's JSON conventions):

    GET    /api/v1/materialization-jobs?project=&feature_view=&state=&limit=
    GET    /api/v1/materialization-jobs/<id>      with its partitions
    DELETE /api/v1/materialization-jobs/<id>      cancel (WRITE_ONLINE on the view)
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from access.actions import Action
from access.api_errors import RequestValidationError
from access.api_views import GatedAPIView
from access.policy import authorize, is_allowed, restrict
from catalog.models import FeatureView, Project
from serving.api.base import NO_PROJECT, ServingAPIView
from serving.api.errors import feast_error_response
from serving.errors import FeatureViewNotFound, InvalidRequest

from . import jobs, schema
from .errors import AlreadyRunning, MaterializationError
from .models import JobState, MaterializationJob, MaterializationPartition, Trigger
from .planning import EPOCH, PARTITION_BY
from .tasks import dispatch

MAX_LIMIT = 500


def job_json(job: MaterializationJob, partitions: list[MaterializationPartition] | None = None) -> dict[str, Any]:
    """A job as the API shows it (and the jobs page polls)."""
    out: dict[str, Any] = {
        "id": job.pk,
        "project": job.project_name,
        "feature_view": job.view_name,
        "start": job.start.isoformat(),
        "end": job.end.isoformat(),
        "incremental": job.incremental,
        "trigger": job.trigger,
        "state": job.state,
        "progress": round(job.progress, 4),
        "partitions_total": job.partitions_total,
        "partitions_done": job.partitions_done,
        "rows_read": job.rows_read,
        "rows_written": job.rows_written,
        "rows_skipped": job.rows_skipped,
        "attempt": job.attempt,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if partitions is not None:
        out["partitions"] = [
            {
                "index": p.index,
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "bucket": p.bucket,
                "buckets": p.buckets,
                "state": p.state,
                "attempt": p.attempt,
                "worker": p.worker,
                "workers": p.workers,
                "rows_read": p.rows_read,
                "rows_written": p.rows_written,
                "rows_skipped": p.rows_skipped,
                "error": p.error,
            }
            for p in partitions
        ]
    return out


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


# -- Feast's endpoints ---------------------------------------------------------------------


class _MaterializeBase(ServingAPIView):
    """POST /materialize and /materialize-incremental (module docstring)."""

    incremental = False

    def post(self, request: Request) -> Any:
        body = self.json_body(request)
        project = self._project(body)
        names = body.get("feature_views")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise InvalidRequest("feature_views: a list of feature view names, or null for every online view")
        partitions = body.get("partitions")
        if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int)):
            raise InvalidRequest("partitions: an integer (the number of partitions per view)")
        partition_by = body.get("partition_by")
        if partition_by is not None and partition_by not in PARTITION_BY:
            raise InvalidRequest(f"partition_by: one of {', '.join(PARTITION_BY)}")
        views = self._gated_views(project, names)
        start, end = self._window(body)
        try:
            requests, _ = jobs.plan_requests(views, start=start, end=end, incremental=self.incremental)
            created = jobs.create_jobs(
                requests, trigger=Trigger.API, user=request.user, partitions=partitions, partition_by=partition_by
            )
        except AlreadyRunning as exc:
            return _json({"error": str(exc), "feature_views": exc.views, "jobs": exc.job_ids}, status=409)
        except MaterializationError as exc:
            raise InvalidRequest(str(exc)) from None
        if _truthy(request.query_params.get("async")):
            for job in created:
                dispatch(job)
            return _json(
                {
                    "status": "accepted",
                    "feature_views": [j.view_name for j in created],
                    "jobs": [j.pk for j in created],
                },
                status=202,
            )
        failed = [job for job in (jobs.run_job_inline(j) for j in created) if job.state != JobState.SUCCEEDED]
        if failed:
            message = "; ".join(f"{j.view_name} (job {j.pk}): {j.state} {j.error}" for j in failed)
            return feast_error_response(500, "FeastError", f"materialization failed: {message}")
        return _json(None)

    def _project(self, body: dict[str, Any]) -> Project:
        name = body.get("project") or self.request.query_params.get("project") or settings.LARDER_SERVING_PROJECT
        if name:
            if not isinstance(name, str):
                raise InvalidRequest("project: a project name (string) is required")
            project = Project.objects.filter(name=name).first()
            # A missing project is an empty one, as a project the caller may not see.
            return project if project is not None else Project(name=name)
        projects = list(Project.objects.all()[:2])
        if len(projects) != 1:
            raise InvalidRequest(NO_PROJECT)
        return projects[0]

    def _gated_views(self, project: Project, names: list[str] | None) -> list[FeatureView]:
        user = self.request.user
        queryset = FeatureView.objects.filter(project_id=project.pk).select_related("project", "source")
        if names is None:
            views = list(restrict(queryset.filter(online=True), user, Action.WRITE_ONLINE).order_by("name"))
            if not views:
                raise InvalidRequest(f"project {project.name}: no online feature view you may materialize")
            self._gate_passed = True
            return views
        if not names:
            raise InvalidRequest("feature_views: name at least one view, or send null for every online view")
        found = {v.name: v for v in queryset.filter(name__in=names)}
        views = []
        for name in dict.fromkeys(names):
            view = found.get(name)
            if view is None or not is_allowed(user, Action.DESCRIBE, view):
                raise FeatureViewNotFound(name, project.name)
            authorize(user, Action.WRITE_ONLINE, view)  # 403 naming the view and the action
            views.append(view)
        self._gate_passed = True
        return views

    def _window(self, body: dict[str, Any]) -> tuple[Any, Any]:
        from .planning import as_utc

        try:
            if self.incremental:
                return None, as_utc(_required(body, "end_ts"), "end_ts")
            if body.get("disable_event_timestamp"):
                return EPOCH, timezone.now()
            return as_utc(_required(body, "start_ts"), "start_ts"), as_utc(_required(body, "end_ts"), "end_ts")
        except MaterializationError as exc:
            raise InvalidRequest(str(exc)) from None


def _required(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value in (None, ""):
        raise InvalidRequest(f"{name}: an ISO 8601 timestamp is required")
    return value


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


class MaterializeView(_MaterializeBase):
    incremental = False

    @schema.materialize_schema
    def post(self, request: Request) -> Any:
        return super().post(request)


class MaterializeIncrementalView(_MaterializeBase):
    incremental = True

    @schema.materialize_incremental_schema
    def post(self, request: Request) -> Any:
        return super().post(request)


# -- the job REST API ----------------------------------------------------------------------


class JobListView(GatedAPIView):
    """GET /api/v1/materialization-jobs: the jobs of views the caller may DESCRIBE, newest first."""

    queryset = MaterializationJob.objects.all()

    @schema.job_list_schema
    def get(self, request: Request) -> Response:
        jobs_qs = self.queryset
        params = request.query_params
        if params.get("project"):
            jobs_qs = jobs_qs.filter(project_name=params["project"])
        if params.get("feature_view"):
            jobs_qs = jobs_qs.filter(view_name=params["feature_view"])
        if params.get("state"):
            state = params["state"].upper()
            if state not in JobState.values:
                raise RequestValidationError.invalid("query", "state", f"one of {', '.join(JobState.values)}")
            jobs_qs = jobs_qs.filter(state=state)
        try:
            limit = int(params.get("limit", 50))
        except ValueError:
            raise RequestValidationError.invalid("query", "limit", "an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise RequestValidationError.invalid("query", "limit", f"between 1 and {MAX_LIMIT}")
        page = list(jobs_qs.order_by("-created_at", "-id")[:limit])
        return Response({"jobs": [job_json(j) for j in page], "count": jobs_qs.count()})


class JobDetailView(GatedAPIView):
    """GET one job with its partitions; DELETE cancels it (WRITE_ONLINE on its view)."""

    queryset = MaterializationJob.objects.all()

    @schema.job_detail_schema
    def get(self, request: Request, job_id: int) -> Response:
        job = self.queryset.filter(pk=job_id).first()
        if job is None:
            raise Http404(f"materialization job {job_id} does not exist")
        return Response(job_json(job, list(job.partitions.order_by("index"))))

    @schema.job_cancel_schema
    def delete(self, request: Request, job_id: int) -> Response:
        job = visible_job(request.user, job_id)
        authorize(request.user, Action.WRITE_ONLINE, job.feature_view)
        self._gate_passed = True
        jobs.cancel_job(job)
        return Response(job_json(job, list(job.partitions.order_by("index"))))


def visible_job(user: Any, job_id: int) -> MaterializationJob:
    """The job if the caller may DESCRIBE its view; Http404 otherwise (missing or hidden alike)."""
    job = restrict(MaterializationJob.objects.filter(pk=job_id), user, Action.DESCRIBE).first()
    if job is None:
        raise Http404(f"materialization job {job_id} does not exist")
    return job
