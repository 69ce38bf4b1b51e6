"""OpenAPI descriptions of the feature-server endpoints (drf-spectacular), written out
because the views parse their bodies themselves (orjson, Feast's shapes)."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema

COLUMNS = {
    "type": "object",
    "description": "Columns: name -> list of values, all lists the same length.",
    "additionalProperties": {"type": "array", "items": {}},
}
PROJECT = {
    "type": "string",
    "description": "Larder: the project (also ?project=); optional when the server holds one project "
    "or sets LARDER_SERVING_PROJECT.",
}
FEAST_ERROR = OpenApiResponse(
    {
        "type": "string",
        "description": 'Feast\'s error body: a JSON string holding {"module", "class", "message"}.',
    },
    "Feast's FeastError shape; `class` names the error (FeatureViewNotFoundException, FeastPermissionError...).",
)
ERRORS = {
    401: OpenApiResponse(description="No token, or a token no verifier accepts."),
    403: FEAST_ERROR,
    404: FEAST_ERROR,
    422: FEAST_ERROR,
    503: FEAST_ERROR,
}

GET_ONLINE_FEATURES_BODY = {
    "type": "object",
    "required": ["entities"],
    "properties": {
        "features": {"type": "array", "items": {"type": "string"}, "description": '"view:feature" references'},
        "feature_service": {"type": "string", "description": "instead of features"},
        "entities": COLUMNS,
        "full_feature_names": {"type": "boolean", "default": False},
        "project": PROJECT,
    },
    "example": {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}},
}
FEATURE_VECTOR = {
    "type": "object",
    "properties": {
        "values": {"type": "array", "items": {}},
        "statuses": {
            "type": "array",
            "items": {"type": "string", "enum": ["PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"]},
        },
        "event_timestamps": {"type": "array", "items": {"type": "string", "format": "date-time"}},
    },
}
GET_ONLINE_FEATURES_RESPONSE = {
    "type": "object",
    "properties": {
        "metadata": {
            "type": "object",
            "properties": {"feature_names": {"type": "array", "items": {"type": "string"}}},
        },
        "results": {"type": "array", "items": FEATURE_VECTOR},
    },
}
PUSH_BODY = {
    "type": "object",
    "required": ["push_source_name", "df"],
    "properties": {
        "push_source_name": {"type": "string"},
        "df": COLUMNS,
        "to": {"type": "string", "enum": ["online", "offline", "online_and_offline"], "default": "online"},
        "project": PROJECT,
    },
}
WRITE_BODY = {
    "type": "object",
    "required": ["feature_view_name", "df"],
    "properties": {"feature_view_name": {"type": "string"}, "df": COLUMNS, "project": PROJECT},
}

online_features_schema = extend_schema(
    operation_id="getOnlineFeatures",
    summary="Latest feature values for a batch of entities (Feast's /get-online-features)",
    tags=["online"],
    request={"application/json": GET_ONLINE_FEATURES_BODY},
    responses={200: OpenApiResponse(GET_ONLINE_FEATURES_RESPONSE, "Join keys first, then the features."), **ERRORS},
    examples=[
        OpenApiExample(
            "Two drivers",
            value={"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}},
            request_only=True,
        )
    ],
)
push_schema = extend_schema(
    operation_id="push",
    summary="Push rows through a push source (Feast's /push)",
    tags=["online"],
    request={"application/json": PUSH_BODY},
    responses={
        200: OpenApiResponse(description="Written (empty body)."),
        500: FEAST_ERROR,
        502: FEAST_ERROR,
        **ERRORS,
    },
)
write_schema = extend_schema(
    operation_id="writeToOnlineStore",
    summary="Write rows of one feature view to the online store (Feast's /write-to-online-store)",
    tags=["online"],
    request={"application/json": WRITE_BODY},
    responses={200: OpenApiResponse(description="Written; the body is `null`, as Feast answers."), **ERRORS},
)
