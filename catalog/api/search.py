"""GET /api/v1/search: Feast's REST registry search, over what the caller may DESCRIBE.

Parameters (Feast's): `query` (Feast requires it; here an empty query lists
everything the caller may see, by type and name), `projects` (repeatable; none = all),
`tags=key:value` (repeatable, all must match), `sort_by` (match_score | name | type),
`sort_order` (asc | desc; match_score defaults to desc), `page`, `limit` (<= 100,
default 50). Larder's additions: `type` (repeatable: featureView, feature, entity, ...)
and `owner`. Bad values answer 422 naming the parameter.

Answer: `{query, projects_searched, results: [{type, name, description, project,
matched_tags, match_score}], pagination: {page, limit, totalCount, totalPages,
hasNext, hasPrevious}, errors, facets}`; a feature's item also names its `featureView`.
A requested project that does not exist, or that the caller cannot see, is reported
the same way in `errors` ("Following projects do not exist: ...").

No `GatedAPIView` here: the answer spans every type, and catalog.search restricts
each type with `restrict` before matching, which is the gate.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_errors import RequestValidationError, error_item
from access.policy import restrict
from catalog.models import Project
from catalog.search import FEAST_TYPES, SORTS, TYPE_FROM_PUBLIC, Hit, SearchParams, search

from .pagination import MAX_LIMIT, parse_list_params
from .serializers import ErrorSerializer

DEFAULT_LIMIT = 50


def parse_search_params(query: Any) -> SearchParams:
    """SearchParams from the query string; every problem reported at once (422)."""
    text = (query.get("query") or "").strip()
    errors: list[dict[str, Any]] = []
    try:
        listed = parse_list_params(query, {s: s for s in SORTS})
    except RequestValidationError as exc:
        errors += exc.errors
        listed = None
    types = []
    for raw in query.getlist("type"):
        rtype = TYPE_FROM_PUBLIC.get(raw.strip().lower())
        if rtype is None:
            errors.append(error_item(["query", "type"], f"type must be one of {', '.join(FEAST_TYPES.values())}"))
        else:
            types.append(rtype)
    if errors:
        raise RequestValidationError(errors)
    sort_by = listed.sort_by or "match_score"
    descending = listed.descending if query.get("sort_order") else sort_by == "match_score"
    limit = listed.limit if query.get("limit") else DEFAULT_LIMIT
    return SearchParams(
        query=text,
        types=tuple(types),
        projects=tuple(p.strip() for p in query.getlist("projects") if p.strip()),
        tags=listed.tags,
        owner=(query.get("owner") or "").strip(),
        page=listed.page,
        limit=limit,
        sort_by=sort_by,
        descending=descending,
    )


def result_item(hit: Hit) -> dict[str, Any]:
    item = {
        "type": hit.feast_type,
        "name": hit.name,
        "description": hit.description,
        "project": hit.project,
        "matched_tags": hit.matched_tags,
        "match_score": hit.score,
    }
    if hit.parent_name:
        item["featureView"] = hit.parent_name
    return item


class SearchSchema(AutoSchema):
    def get_operation_id(self) -> str:
        return "search"

    def get_tags(self) -> list[str]:
        return ["registry"]

    def get_description(self) -> str:
        return __doc__.split("\n\n", 1)[1]

    def get_override_parameters(self) -> list[OpenApiParameter]:
        q = OpenApiParameter.QUERY
        return [
            OpenApiParameter("query", OpenApiTypes.STR, q, description="Words to look for (empty: list everything)."),
            OpenApiParameter("projects", OpenApiTypes.STR, q, many=True, description="Projects to search (all)."),
            OpenApiParameter("tags", OpenApiTypes.STR, q, many=True, description="key:value, all must match."),
            OpenApiParameter("type", OpenApiTypes.STR, q, many=True, enum=list(FEAST_TYPES.values())),
            OpenApiParameter("owner", OpenApiTypes.STR, q),
            OpenApiParameter("sort_by", OpenApiTypes.STR, q, enum=list(SORTS), default="match_score"),
            OpenApiParameter("sort_order", OpenApiTypes.STR, q, enum=["asc", "desc"]),
            OpenApiParameter("page", OpenApiTypes.INT, q, default=1),
            OpenApiParameter("limit", OpenApiTypes.INT, q, default=DEFAULT_LIMIT, description=f"At most {MAX_LIMIT}."),
        ]

    def get_response_serializers(self) -> Any:
        return {
            200: OpenApiResponse(OpenApiTypes.OBJECT, "Results, pagination, facets, errors."),
            401: OpenApiResponse(ErrorSerializer, "No login or token."),
            422: OpenApiResponse(ErrorSerializer, "RequestValidationError naming the parameter."),
        }


class SearchView(APIView):
    schema = SearchSchema()

    def get(self, request: Request) -> Response:
        params = parse_search_params(request.query_params)
        results = search(request.user, params)
        found = {f.value for f in results.facets["project"]}
        describable = set(restrict(Project.objects.all(), request.user).values_list("name", flat=True))
        errors = []
        if params.projects:
            missing = [p for p in params.projects if p not in found | describable]
            if missing:
                errors.append(f"Following projects do not exist: {', '.join(missing)}")
            searched = [p for p in params.projects if p not in missing]
        else:
            searched = sorted(found | describable)
        return Response(
            {
                "query": params.query,
                "projects_searched": searched,
                "results": [result_item(h) for h in results.hits],
                "pagination": results.pagination(),
                "errors": errors,
                "facets": {
                    name: [{"value": f.value, "count": f.count} for f in values]
                    for name, values in results.facets.items()
                },
            }
        )
