"""POST /api/v1/historical-features and its jobs (docs/api.md, "Historical retrieval").

Every view is an access.api_views.GatedAPIView: a 2xx that did not pass the gate is a
500. The POST passes it through READ_OFFLINE on the feature service or on every view
read (serving.historical.resolve) and, with `save_as`, CREATE on the saved dataset;
the job views read HistoricalJob through `restrict`, which defers to the model's
`gate_through` (its owner, or a superuser; anyone else gets the 404 of a missing job).

Errors keep the API's shape `{status_code, detail, error_type}`; bad input is a 422
whose detail items name the field or column.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from rest_framework import exceptions, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from access.api_errors import RequestValidationError, error_item
from access.api_errors import exception_handler as api_exception_handler
from access.api_views import GatedAPIView
from catalog.models import FeatureView
from serving.errors import ServingError
from serving.offline.base import OfflineEngineError, OfflineInputError

from . import entity_sql, formats
from .build import build_training_set, check_entity
from .entities import table_from_columns, table_from_upload
from .jobs import create_job
from .models import HistoricalJob
from .request import HistoricalRequest, parse_request
from .resolve import HistoricalPlan, plan_request
from .saved import check_save_as, save_dataset
from .schema import historical_features_schema, job_result_schema, job_schema


class ServingAPIError(exceptions.APIException):
    """A serving.errors error in the API's shape, its Feast class as `error_type`."""

    def __init__(self, exc: ServingError):
        self.status_code = exc.status_code
        self.error_type = exc.feast_class
        super().__init__(exc.message)


class Gone(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_code = "gone"


class JobNotFinished(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """access.api_errors' shape, with the offline engines' and serving layer's errors mapped:
    bad input 422 (naming the column), not found 404, an engine failure 502."""
    if isinstance(exc, OfflineInputError):
        exc = RequestValidationError([error_item(["body"], str(exc))])
    elif isinstance(exc, OfflineEngineError):
        exc = exceptions.APIException(str(exc))
        exc.status_code = status.HTTP_502_BAD_GATEWAY
    elif isinstance(exc, ServingError):
        if exc.status_code == status.HTTP_404_NOT_FOUND:
            exc = Http404(exc.message)
        elif exc.status_code == status.HTTP_422_UNPROCESSABLE_ENTITY:
            exc = RequestValidationError([error_item(["body"], exc.message)])
        else:
            exc = ServingAPIError(exc)
    response = api_exception_handler(exc, context)
    if response is not None and isinstance(exc, ServingAPIError):
        response.data["error_type"] = exc.error_type
    return response


class FormatNegotiation(DefaultContentNegotiation):
    """Results are written by serving.historical.formats, which reads Accept itself; DRF
    renders only JSON bodies (status, errors), so an Accept of Parquet is not a 406."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class HistoricalAPIView(GatedAPIView):
    """What the historical views share: JSON bodies whatever Accept says, the exception handler."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = FormatNegotiation

    def get_exception_handler(self) -> Any:
        return exception_handler


class FormOrJSONParser(FormParser):
    """`curl -d '{...}'` sends JSON labelled as a form: a body that is a JSON object is read
    as JSON, anything else as the form it says it is."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if raw.lstrip()[:1] == b"{":
            return JSONParser().parse(io.BytesIO(raw), "application/json", parser_context)
        return super().parse(io.BytesIO(raw), media_type, parser_context)


class HistoricalFeaturesView(HistoricalAPIView):
    """POST: a point-in-time-correct training set, now (small requests) or as a job."""

    queryset = FeatureView.objects.all()  # what it reads; gated per object in resolve
    parser_classes = [JSONParser, MultiPartParser, FormOrJSONParser]
    http_method_names = ["post"]

    def _passed(self) -> None:
        self._gate_passed = True

    @historical_features_schema
    def post(self, request: Request) -> Any:
        req = parse_request(request)
        plan = plan_request(
            request.user, req.project, req.features, req.feature_service, req.full_feature_names, self._passed
        )
        if req.save_as is not None:
            check_save_as(request.user, plan, req.save_as)
        entity = self.entity_table(req, plan)
        if entity.num_rows == 0:
            raise RequestValidationError([error_item(["body", req.entity_source], "the entity set is empty")])
        check_entity(plan, entity)  # before a job is queued: bad columns are a 422 now, not a failed job
        if req.run_async or entity.num_rows > settings.LARDER_HISTORICAL_ASYNC_ROWS:
            return self.start_job(request, req, entity)
        table = build_training_set(plan, entity)
        headers = {}
        if req.save_as is not None:
            dataset = save_dataset(request.user, plan, req.save_as, req.record, table=table)
            headers["X-Larder-Saved-Dataset"] = dataset.name
        return table_response(table, req.format, headers)

    def entity_table(self, req: HistoricalRequest, plan: HistoricalPlan) -> Any:
        if req.entities is not None:
            return table_from_columns(req.entities, plan.entity_dtypes())
        if req.entity_file is not None:
            return table_from_upload(req.entity_file)
        return entity_sql.run_entity_sql(req.entity_sql or "", sql_dsn_setting(plan))

    def start_job(self, request: Request, req: HistoricalRequest, entity: Any) -> Response:
        with transaction.atomic():
            job = create_job(request.user, req, entity)
        url = reverse("historical:job", kwargs={"job_id": job.pk})
        body = {
            "job_id": str(job.pk),
            "status": job.state,
            "status_url": request.build_absolute_uri(url),
            "result_url": request.build_absolute_uri(reverse("historical:job-result", kwargs={"job_id": job.pk})),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


def sql_dsn_setting(plan: HistoricalPlan) -> str:
    """entity_sql runs on the database of the views' sources: all postgres, one DSN."""
    settings_used = set()
    for spec, _ in plan.views:
        if spec.source.kind != "postgres":
            raise RequestValidationError(
                [
                    error_item(
                        ["body", "entity_sql"],
                        f"entity_sql needs PostgreSQL sources, but feature view {spec.name!r} reads "
                        f"{spec.source.kind} source {spec.source.name!r}: send entities or an entity_file",
                    )
                ]
            )
        settings_used.add(spec.source.dsn_setting)
    if len(settings_used) != 1:
        raise RequestValidationError(
            [
                error_item(
                    ["body", "entity_sql"],
                    "entity_sql needs every feature view on one database; these read "
                    + (", ".join(sorted(settings_used)) or "none"),
                )
            ]
        )
    return settings_used.pop()


def table_response(table: Any, fmt: str, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(formats.table_bytes(table, fmt), content_type=formats.MEDIA_TYPES[fmt])
    if fmt != "json":
        response["Content-Disposition"] = f'attachment; filename="historical-features.{formats.EXTENSIONS[fmt]}"'
    response["X-Larder-Rows"] = str(table.num_rows)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def job_body(request: Request, job: HistoricalJob) -> dict[str, Any]:
    expired = job.is_expired()
    body: dict[str, Any] = {
        "job_id": str(job.pk),
        "project": job.project,
        "status": job.state,
        "progress": {"rows_total": job.rows_total, "rows_done": job.rows_done, "message": job.message},
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
        "expired": expired,
        "error": job.error or None,
        "result_url": None,
    }
    if job.state == HistoricalJob.State.SUCCEEDED and not expired:
        body["result_url"] = request.build_absolute_uri(reverse("historical:job-result", kwargs={"job_id": job.pk}))
    save_as = (job.params or {}).get("save_as")
    if save_as:
        body["save_as"] = save_as.get("name")
    return body


class JobView(HistoricalAPIView):
    """GET: a job's status and progress (its owner or a superuser; otherwise 404)."""

    queryset = HistoricalJob.objects.all()
    http_method_names = ["get", "head"]

    def get_job(self, job_id: str) -> HistoricalJob:
        job = self.queryset.filter(pk=job_id).first()  # narrowed by restrict in initial()
        if job is None:
            raise Http404(f"Historical job {job_id} does not exist")
        return job

    @job_schema
    def get(self, request: Request, job_id: str) -> Response:
        return Response(job_body(request, self.get_job(job_id)))


class JobResultView(JobView):
    """GET: the result of a finished job: 409 while it runs (or after it failed), 410 once
    expired; `?format=` or Accept chooses the format (default: the request's)."""

    @job_result_schema
    def get(self, request: Request, job_id: str) -> Any:
        job = self.get_job(job_id)
        if job.is_expired() or (job.state == HistoricalJob.State.SUCCEEDED and not job.result_path):
            raise Gone(f"the result of job {job.pk} expired at {job.expires_at:%Y-%m-%dT%H:%M:%SZ} and was deleted")
        if job.state == HistoricalJob.State.FAILED:
            raise JobNotFinished(f"job {job.pk} failed: {job.error}")
        if job.state != HistoricalJob.State.SUCCEEDED:
            raise JobNotFinished(f"job {job.pk} is {job.state} ({job.rows_done} of {job.rows_total} rows): try later")
        path = Path(job.result_path)
        if not path.exists():
            raise Gone(f"the result of job {job.pk} is no longer stored")
        fmt = formats.format_from_request(request, default=(job.params or {}).get("format") or "parquet")
        filename = f"historical-{job.pk}.{formats.EXTENSIONS[fmt]}"
        if fmt == "parquet":
            return FileResponse(
                path.open("rb"), content_type=formats.MEDIA_TYPES[fmt], as_attachment=True, filename=filename
            )
        if fmt == "json":  # columnar: built whole anyway
            return HttpResponse(b"".join(formats.parquet_file_chunks(path, fmt)), content_type=formats.MEDIA_TYPES[fmt])
        response = StreamingHttpResponse(formats.parquet_file_chunks(path, fmt), content_type=formats.MEDIA_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
