"""OpenAPI descriptions of the historical endpoints (drf-spectacular), written out because
the views read their bodies and write their answers themselves (Parquet, Arrow, CSV)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from .formats import MEDIA_TYPES

COLUMNS = {
    "type": "object",
    "description": "Columns: name -> list of values, all lists the same length.",
    "additionalProperties": {"type": "array", "items": {}},
}
API_ERROR = {
    "type": "object",
    "properties": {
        "status_code": {"type": "integer"},
        "detail": {"description": "a message, or for 422 a list of {loc, msg, type}"},
        "error_type": {"type": "string"},
    },
}
FIELDS = {
    "project": {"type": "string"},
    "features": {"type": "array", "items": {"type": "string"}, "description": '"view:feature" references'},
    "feature_service": {"type": "string", "description": "instead of features"},
    "full_feature_names": {"type": "boolean", "default": False},
    "format": {"type": "string", "enum": list(MEDIA_TYPES), "default": "json"},
    "save_as": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "tags": {"type": "object"}},
        "description": "also register the result as a saved dataset",
    },
    "async": {"type": "boolean", "default": False, "description": "run as a job even when small"},
}
JSON_BODY = {
    "type": "object",
    "required": ["project"],
    "properties": {
        **FIELDS,
        "entities": COLUMNS,
        "entity_sql": {"type": "string", "description": "one read-only SELECT (PostgreSQL sources only)"},
    },
    "example": {
        "project": "driver_stats",
        "features": ["driver_hourly_stats:conv_rate"],
        "entities": {"driver_id": [1001], "event_timestamp": ["2026-11-28T10:00:00Z"]},
    },
}
MULTIPART_BODY = {
    "type": "object",
    "required": ["project", "entity_file"],
    "properties": {**FIELDS, "entity_file": {"type": "string", "format": "binary", "description": "Parquet or CSV"}},
}
JOB_ACCEPTED = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string"},
        "status_url": {"type": "string", "format": "uri"},
        "result_url": {"type": "string", "format": "uri"},
    },
}
JOB_STATUS = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string", "format": "uuid"},
        "project": {"type": "string"},
        "status": {"type": "string", "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]},
        "progress": {
            "type": "object",
            "properties": {
                "rows_total": {"type": "integer"},
                "rows_done": {"type": "integer"},
                "message": {"type": "string"},
            },
        },
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": "string", "format": "date-time", "nullable": True},
        "finished_at": {"type": "string", "format": "date-time", "nullable": True},
        "expires_at": {"type": "string", "format": "date-time", "nullable": True},
        "expired": {"type": "boolean"},
        "error": {"type": "string", "nullable": True},
        "result_url": {"type": "string", "format": "uri", "nullable": True},
        "save_as": {"type": "string"},
    },
}
TABLE = OpenApiResponse(
    {"type": "string", "format": "binary"},
    'The training set: Parquet, Arrow IPC stream, CSV, or JSON `{"columns": {name: [values]}}`.',
)
FORMAT = OpenApiParameter(
    "format", str, OpenApiParameter.QUERY, enum=list(MEDIA_TYPES), description="or the Accept header"
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(API_ERROR, description)


historical_features_schema = extend_schema(
    operation_id="getHistoricalFeatures",
    summary="A point-in-time-correct training set (now, or as a job)",
    tags=["historical"],
    parameters=[FORMAT, OpenApiParameter("async", bool, OpenApiParameter.QUERY)],
    request={"application/json": JSON_BODY, "multipart/form-data": MULTIPART_BODY},
    responses={
        200: TABLE,
        202: OpenApiResponse(JOB_ACCEPTED, "Queued as a job: poll status_url."),
        401: _error("No token, or a bad one."),
        403: _error("READ_OFFLINE (or CREATE on the saved dataset) refused; names the object."),
        404: _error("Unknown or hidden project, view, feature or service."),
        409: _error("save_as: the name is taken."),
        422: _error("Bad input, naming the field or column."),
        502: _error("An offline source could not be read."),
    },
)
job_schema = extend_schema(
    operation_id="getHistoricalJob",
    summary="A historical job's status and progress",
    tags=["historical"],
    responses={200: OpenApiResponse(JOB_STATUS), 404: _error("No such job, or not yours.")},
)
job_result_schema = extend_schema(
    operation_id="getHistoricalJobResult",
    summary="A finished job's training set",
    tags=["historical"],
    parameters=[FORMAT],
    responses={
        200: TABLE,
        404: _error("No such job, or not yours."),
        409: _error("Not finished yet, or failed."),
        410: _error("Expired and deleted."),
    },
)
