"""OpenAPI descriptions of the materialization endpoints (drf-spectacular), written out
because the views parse Feast's bodies themselves."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from serving.api.schema import ERRORS, FEAST_ERROR, PROJECT

TIMESTAMP = {"type": "string", "format": "date-time", "description": "ISO 8601; no offset: UTC"}
VIEWS = {
    "type": "array",
    "items": {"type": "string"},
    "nullable": True,
    "description": "feature view names; null: every online view the caller may WRITE_ONLINE",
}
PARTITIONS = {"type": "integer", "description": "Larder: partitions per view (default: one per 30 days of window)"}
PARTITION_BY = {
    "type": "string",
    "enum": ["time", "entity"],
    "description": "Larder: cut the window in time slices, or the entities in hash buckets (default: time)",
}
MATERIALIZE_BODY = {
    "type": "object",
    "required": ["start_ts", "end_ts"],
    "properties": {
        "start_ts": TIMESTAMP,
        "end_ts": TIMESTAMP,
        "feature_views": VIEWS,
        "disable_event_timestamp": {"type": "boolean", "default": False, "description": "window 1970-01-01 .. now"},
        "project": PROJECT,
        "partitions": PARTITIONS,
        "partition_by": PARTITION_BY,
    },
    "example": {"start_ts": "2026-01-01T00:00:00Z", "end_ts": "2026-01-02T00:00:00Z", "feature_views": None},
}
INCREMENTAL_BODY = {
    "type": "object",
    "required": ["end_ts"],
    "properties": {
        "end_ts": TIMESTAMP,
        "feature_views": VIEWS,
        "project": PROJECT,
        "partitions": PARTITIONS,
        "partition_by": PARTITION_BY,
    },
}
ACCEPTED = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["accepted"]},
        "feature_views": {"type": "array", "items": {"type": "string"}},
        "jobs": {"type": "array", "items": {"type": "integer"}},
    },
}
CONFLICT = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "feature_views": {"type": "array", "items": {"type": "string"}},
        "jobs": {"type": "array", "items": {"type": "integer"}, "description": "the jobs running now"},
    },
}
JOB = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "project": {"type": "string"},
        "feature_view": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "incremental": {"type": "boolean"},
        "trigger": {"type": "string", "enum": ["api", "cli", "schedule", "ui"]},
        "state": {"type": "string", "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]},
        "progress": {"type": "number", "description": "0..1, in finished partitions"},
        "partitions_total": {"type": "integer"},
        "partitions_done": {"type": "integer"},
        "rows_read": {"type": "integer"},
        "rows_written": {"type": "integer"},
        "rows_skipped": {"type": "integer", "description": "already newer online"},
        "attempt": {"type": "integer", "description": "the highest attempt of any partition (2+: redelivered)"},
        "error": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": "string", "format": "date-time", "nullable": True},
        "finished_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}
JOB_DETAIL = {
    "allOf": [
        JOB,
        {
            "type": "object",
            "properties": {
                "partitions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "start": {"type": "string", "format": "date-time"},
                            "end": {"type": "string", "format": "date-time"},
                            "bucket": {"type": "integer", "description": "entity hash bucket (0 of 1: all)"},
                            "buckets": {"type": "integer"},
                            "state": {"type": "string"},
                            "attempt": {"type": "integer"},
                            "worker": {"type": "string"},
                            "workers": {"type": "array", "items": {"type": "string"}},
                            "rows_read": {"type": "integer"},
                            "rows_written": {"type": "integer"},
                            "rows_skipped": {"type": "integer"},
                            "error": {"type": "string"},
                        },
                    },
                }
            },
        },
    ]
}
ASYNC = OpenApiParameter("async", bool, description="queue on the Celery workers and answer 202 with the job ids")
RUN_RESPONSES = {
    200: OpenApiResponse(description="Materialized (synchronous): the body is `null`, as Feast's."),
    202: OpenApiResponse(ACCEPTED, "Queued (`?async=true`)."),
    409: OpenApiResponse(CONFLICT, "A view already has a running job; nothing was started."),
    500: FEAST_ERROR,
    **ERRORS,
}

materialize_schema = extend_schema(
    operation_id="materialize",
    summary="Materialize feature views over [start_ts, end_ts] (Feast's /materialize)",
    tags=["materialization"],
    parameters=[ASYNC],
    request={"application/json": MATERIALIZE_BODY},
    responses=RUN_RESPONSES,
)
materialize_incremental_schema = extend_schema(
    operation_id="materializeIncremental",
    summary="Materialize each view from where it stopped up to end_ts (Feast's /materialize-incremental)",
    tags=["materialization"],
    parameters=[ASYNC],
    request={"application/json": INCREMENTAL_BODY},
    responses=RUN_RESPONSES,
)
job_list_schema = extend_schema(
    operation_id="listMaterializationJobs",
    summary="Materialization jobs of the views you may DESCRIBE, newest first",
    tags=["materialization"],
    parameters=[
        OpenApiParameter("project", str),
        OpenApiParameter("feature_view", str),
        OpenApiParameter("state", str, enum=["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]),
        OpenApiParameter("limit", int, description="1..500, default 50"),
    ],
    responses={
        200: OpenApiResponse(
            {"type": "object", "properties": {"jobs": {"type": "array", "items": JOB}, "count": {"type": "integer"}}}
        ),
        401: ERRORS[401],
        422: OpenApiResponse(description="A bad query parameter (named)."),
    },
)
job_detail_schema = extend_schema(
    operation_id="getMaterializationJob",
    summary="One materialization job with its partitions",
    tags=["materialization"],
    responses={200: OpenApiResponse(JOB_DETAIL), 401: ERRORS[401], 404: OpenApiResponse(description="No such job.")},
)
job_cancel_schema = extend_schema(
    operation_id="cancelMaterializationJob",
    summary="Cancel a materialization job (WRITE_ONLINE on its view); the job row stays, CANCELLED",
    tags=["materialization"],
    responses={
        200: OpenApiResponse(JOB_DETAIL),
        401: ERRORS[401],
        403: OpenApiResponse(description="You may see the job but not cancel it."),
        404: OpenApiResponse(description="No such job."),
    },
)
