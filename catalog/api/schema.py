"""OpenAPI for the registry API.

The generic views serve every object type, chosen per route with
`as_view(registry_type=...)`, so introspection cannot see their shapes; these
AutoSchema classes describe each operation from `view.registry_type` and
`view.operation` instead. Operation ids follow Feast's gRPC names (`listFeatureViews`,
`getEntity`, `applyPermission`)."""

from functools import cache
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from .pagination import DEFAULT_LIMIT, MAX_LIMIT
from .serializers import (
    ErrorSerializer,
    FeatureSerializer,
    PaginationSerializer,
    VersionSerializer,
    WriteResultSerializer,
)
from .specs import FEATURE_SORTS

ERRORS = {
    401: OpenApiResponse(ErrorSerializer, "No login or token: `Missing authentication token`."),
    403: OpenApiResponse(ErrorSerializer, "FeastPermissionError naming the object and the action denied."),
    404: OpenApiResponse(
        ErrorSerializer, "FeastObjectNotFoundException: missing, or not visible to you (the same answer)."
    ),
    422: OpenApiResponse(ErrorSerializer, "RequestValidationError: detail lists {loc, msg, type} per problem."),
}

APPLY_BODY = {
    "type": "object",
    "description": "The object as written in a feature repo (docs/feature-repo.md), plus `project`.",
    "required": ["name", "project"],
    "properties": {
        "name": {"type": "string"},
        "project": {"type": "string", "description": "not used for projects"},
        "description": {"type": "string"},
        "owner": {"type": "string"},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": True,
    "example": {"project": "driver_stats", "name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"},
}


def project_param(description: str = "Project name.") -> OpenApiParameter:
    return OpenApiParameter("project", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True, description=description)


def page_params(sorts: dict[str, str]) -> list[OpenApiParameter]:
    q = OpenApiParameter.QUERY
    return [
        OpenApiParameter("page", OpenApiTypes.INT, q, description="Page number, from 1.", default=1),
        OpenApiParameter(
            "limit", OpenApiTypes.INT, q, description=f"Items per page, at most {MAX_LIMIT}.", default=DEFAULT_LIMIT
        ),
        OpenApiParameter("sort_by", OpenApiTypes.STR, q, enum=list(sorts), description="Sort key."),
        OpenApiParameter("sort_order", OpenApiTypes.STR, q, enum=["asc", "desc"], default="asc"),
        OpenApiParameter(
            "tags", OpenApiTypes.STR, q, many=True, description="`key:value`; repeat for several (all must match)."
        ),
    ]


@cache
def list_serializer(component: str, list_key: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """`{<list_key>: [...], "pagination": {...}}`, one component per type (cached: one class per name)."""
    return inline_serializer(name=component, fields={list_key: item(many=True), "pagination": PaginationSerializer()})


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


class RegistrySchema(AutoSchema):
    """catalog.api.views.RegistryView and its subclasses."""

    def _plural(self) -> str:
        return "".join(part.capitalize() for part in self.view.registry_type.path.split("_"))

    def get_operation_id(self) -> str:
        rtype, operation = self.view.registry_type, self.view.operation
        if self.method == "POST":
            return f"apply{rtype.operation_noun}"
        if self.method == "DELETE":
            return f"delete{rtype.operation_noun}"
        if operation == "detail":
            return f"get{rtype.operation_noun}"
        return f"{'listAll' if operation == 'all' else 'list'}{self._plural()}"

    def get_tags(self) -> list[str]:
        return [self.view.registry_type.path]

    def get_description(self) -> str:
        rtype, operation = self.view.registry_type, self.view.operation
        label = rtype.label.lower()
        if self.method == "POST":
            return (
                f"Create or update one {label} from its feature-repo spec (docs/feature-repo.md). Creating needs "
                "CREATE; updating needs DESCRIBE and UPDATE on the stored object and on its new state."
            )
        if self.method == "DELETE":
            return f"Delete one {label}; needs DELETE. Visible but not deletable: 403. Not visible or missing: 404."
        if operation == "detail":
            return f"One {label}. Missing, and not visible to you, answer the same 404."
        where = "every project" if operation == "all" or not rtype.project_scoped else "one project"
        return f"The {rtype.path.replace('_', ' ')} of {where} that you may DESCRIBE, a page at a time."

    def get_override_parameters(self) -> list[Any]:
        rtype, operation = self.view.registry_type, self.view.operation
        params: list[Any] = []
        if rtype.project_scoped and self.method in ("GET", "DELETE") and operation in ("list", "detail"):
            params.append(project_param())
        if self.method == "GET" and operation in ("list", "all"):
            params.extend(page_params(rtype.sorts))
        return params

    def get_request_serializer(self) -> Any:
        return {"application/json": APPLY_BODY} if self.method == "POST" else None

    def get_response_serializers(self) -> Any:
        rtype, operation = self.view.registry_type, self.view.operation
        if self.method == "POST":
            return {201: WriteResultSerializer, **errors(401, 403, 422)}
        if self.method == "DELETE":
            return {200: WriteResultSerializer, **errors(401, 403, 404, 422)}
        if operation == "detail":
            return {200: rtype.serializer, **errors(401, 404, 422)}
        page = list_serializer(f"{rtype.operation_noun}List", rtype.list_key, rtype.serializer)
        return {200: page, **errors(401, 422)}


class FeatureSchema(AutoSchema):
    """catalog.api.views.FeatureBaseView and its subclasses."""

    def get_operation_id(self) -> str:
        return {"list": "listFeatures", "all": "listAllFeatures", "detail": "getFeature"}[self.view.operation]

    def get_tags(self) -> list[str]:
        return ["features"]

    def get_description(self) -> str:
        return {
            "list": "The features of one project's views that you may DESCRIBE, a page at a time.",
            "all": "The features of every view you may DESCRIBE, a page at a time.",
            "detail": "One feature of one view. Missing, and not visible to you, answer the same 404.",
        }[self.view.operation]

    def get_override_parameters(self) -> list[Any]:
        operation = self.view.operation
        params: list[Any] = [project_param()] if operation in ("list", "detail") else []
        if operation in ("list", "all"):
            params.extend(page_params(FEATURE_SORTS))
        return params

    def get_response_serializers(self) -> Any:
        if self.view.operation == "detail":
            return {200: FeatureSerializer, **errors(401, 404, 422)}
        return {200: list_serializer("FeatureList", "features", FeatureSerializer), **errors(401, 422)}


class VersionSchema(AutoSchema):
    def get_operation_id(self) -> str:
        return "getVersion"

    def get_tags(self) -> list[str]:
        return ["registry"]

    def get_description(self) -> str:
        return "The Larder version (Feast's REST registry answers its own version here)."

    def get_response_serializers(self) -> Any:
        return {200: VersionSerializer, **errors(401)}
