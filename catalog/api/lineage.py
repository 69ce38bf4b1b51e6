"""/api/v1/lineage/... in Feast's REST shape (§5.2), gated like every registry read.

GET lineage/registry?project=P
    {"relationships": [...], "indirect_relationships": [...],
     "relationships_pagination": {...}, "indirect_relationships_pagination": {...}}
GET lineage/objects/<type>/<name>?project=P[&include_indirect=true]
    {"relationships": [...], "pagination": {...}}

A relationship is {"source": {"type", "name"}, "target": {"type", "name"}} with
Feast's type names (dataSource, entity, featureView, featureService, plus Larder's
onDemandFeatureView and savedDataset). The graph is catalog.lineage's, built through
restrict: objects the caller may not DESCRIBE, and every relationship touching one,
are absent. A project in which the caller may see nothing answers 404 like a missing
one; so does an object the caller may not see.

Pagination as Feast's: without `page`/`limit` every relationship is returned; with
them, one page and {page, limit, totalCount, totalPages, hasNext, hasPrevious}.
"""

from math import ceil
from typing import Any

from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from access.actions import Action
from access.api_errors import RequestValidationError
from access.api_views import GatedAPIView
from access.policy import is_allowed
from catalog.lineage import TYPES, Edge, LineageGraph, build_project_graph
from catalog.models import Project

from .pagination import DEFAULT_LIMIT, MAX_LIMIT, parse_list_params
from .schema import errors, project_param
from .views import required_query

TRUE = {"1", "true", "yes", "on"}


def page_of(edges: list[Edge], query: Any) -> tuple[list[dict], dict[str, Any]]:
    """All relationships (no page/limit given) or one page of them, and the pagination."""
    items = [e.as_feast() for e in edges]
    if not (query.get("page") or query.get("limit")):
        return items, {"totalCount": len(items), "totalPages": 1 if items else 0}
    params = parse_list_params(query, {})
    start = (params.page - 1) * params.limit
    return items[start : start + params.limit], {
        "page": params.page,
        "limit": params.limit,
        "totalCount": len(items),
        "totalPages": ceil(len(items) / params.limit),
        "hasNext": start + params.limit < len(items),
        "hasPrevious": params.page > 1,
    }


class LineageReferenceSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=list(TYPES))
    name = serializers.CharField()


class LineageRelationshipSerializer(serializers.Serializer):
    source = LineageReferenceSerializer()
    target = LineageReferenceSerializer()


class LineagePaginationSerializer(serializers.Serializer):
    """totalCount and totalPages always; the rest when a page was asked for."""

    page = serializers.IntegerField(required=False)
    limit = serializers.IntegerField(required=False)
    totalCount = serializers.IntegerField()
    totalPages = serializers.IntegerField()
    hasNext = serializers.BooleanField(required=False)
    hasPrevious = serializers.BooleanField(required=False)


class ObjectRelationshipsSerializer(serializers.Serializer):
    relationships = LineageRelationshipSerializer(many=True)
    pagination = LineagePaginationSerializer()


class RegistryLineageSerializer(serializers.Serializer):
    relationships = LineageRelationshipSerializer(many=True)
    indirect_relationships = LineageRelationshipSerializer(many=True)
    relationships_pagination = LineagePaginationSerializer()
    indirect_relationships_pagination = LineagePaginationSerializer()


class LineageSchema(AutoSchema):
    """OpenAPI for the two lineage views (one operation per object type for the second)."""

    def get_operation_id(self) -> str:
        if isinstance(self.view, ObjectLineageView):
            return f"get{self.view.object_type[0].upper()}{self.view.object_type[1:]}Relationships"
        return "getRegistryLineage"

    def get_tags(self) -> list[str]:
        return ["lineage"]

    def get_description(self) -> str:
        if isinstance(self.view, ObjectLineageView):
            return (
                f"The relationships of one {self.view.object_type} (Feast's GetObjectRelationships). "
                "Objects you may not DESCRIBE, and relationships touching them, are left out; an object "
                "you may not see answers 404 like a missing one."
            )
        return (
            "Every relationship of a project (Feast's GetRegistryLineage), direct and indirect, among the "
            "objects you may DESCRIBE."
        )

    def get_override_parameters(self) -> list[Any]:
        q = OpenApiParameter.QUERY
        params = [
            project_param(),
            OpenApiParameter("page", OpenApiTypes.INT, q, description="Page number; omit page and limit for all."),
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                q,
                description=f"Per page, at most {MAX_LIMIT} (default {DEFAULT_LIMIT} when page is given).",
            ),
        ]
        if isinstance(self.view, ObjectLineageView):
            params.append(OpenApiParameter("include_indirect", OpenApiTypes.BOOL, q, default=False))
        else:
            params += [
                OpenApiParameter("filter_object_type", OpenApiTypes.STR, q, enum=list(TYPES)),
                OpenApiParameter("filter_object_name", OpenApiTypes.STR, q),
            ]
        return params

    def get_response_serializers(self) -> Any:
        body = ObjectRelationshipsSerializer if isinstance(self.view, ObjectLineageView) else RegistryLineageSerializer
        return {200: body, **errors(401, 404, 422)}


class LineageBaseView(GatedAPIView):
    """Lineage reads. `initial` passes the gate for GET (the queryset is the projects);
    each object in the answer is then filtered by build_project_graph's restrict."""

    queryset = Project.objects.all()
    schema = LineageSchema()

    def project_graph(self, request: Request) -> LineageGraph:
        name = required_query(request, "project")
        project = Project.objects.filter(name=name).first()
        if project is None:
            raise Http404(f"Project {name} does not exist")
        graph = build_project_graph(project, request.user)
        if not graph.nodes and not is_allowed(request.user, Action.DESCRIBE, project):
            raise Http404(f"Project {name} does not exist")
        return graph


class RegistryLineageView(LineageBaseView):
    """GET lineage/registry?project=P[&filter_object_type=&filter_object_name=]."""

    def get(self, request: Request) -> Response:
        graph = self.project_graph(request)
        direct, indirect = graph.edges, graph.indirect_edges()
        ftype = request.query_params.get("filter_object_type") or ""
        fname = request.query_params.get("filter_object_name") or ""
        if ftype and ftype not in TYPES:
            raise RequestValidationError.invalid(
                "query", "filter_object_type", f"filter_object_type must be one of {', '.join(TYPES)}, got {ftype!r}"
            )
        if ftype or fname:

            def keep(e: Edge) -> bool:
                return any((not ftype or t == ftype) and (not fname or n == fname) for t, n in (e.source, e.target))

            direct, indirect = [e for e in direct if keep(e)], [e for e in indirect if keep(e)]
        relationships, pagination = page_of(direct, request.query_params)
        indirect_items, indirect_pagination = page_of(indirect, request.query_params)
        return Response(
            {
                "relationships": relationships,
                "indirect_relationships": indirect_items,
                "relationships_pagination": pagination,
                "indirect_relationships_pagination": indirect_pagination,
            }
        )


class ObjectLineageView(LineageBaseView):
    """GET lineage/objects/<type>/<name>?project=P[&include_indirect=true]; the type is
    fixed per route (`as_view(object_type=...)`)."""

    object_type = ""

    def get(self, request: Request, name: str) -> Response:
        graph = self.project_graph(request)
        key = (self.object_type, name)
        if key not in graph.nodes:
            raise Http404(f"{self.object_type} {name} does not exist in project {graph.project}")
        include_indirect = (request.query_params.get("include_indirect") or "").lower() in TRUE
        relationships, pagination = page_of(graph.relationships_of(key, include_indirect), request.query_params)
        return Response({"relationships": relationships, "pagination": pagination})
