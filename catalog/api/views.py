"""Feast's REST registry under /api/v1/, every call through access.api_views' gate.

Three generic views serve every object type (`registry_type` is given per route in
urls.py): a project's list (GET) and apply (POST), the list across projects
(`/all`), one object (GET, DELETE). Features have their own three. Reads see only
what `restrict` lets through; writes are authorized on the object before and after
(see GatedAPIView.authorize_apply) and done by catalog.repo, which validates.
"""

from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_errors import RequestValidationError, error_item
from access.api_views import GatedAPIView
from catalog.models import Field, Project

from . import schema
from .pagination import paginate, parse_list_params
from .serializers import FeatureSerializer
from .specs import FEATURE_SORTS, RegistryType


def required_query(request: Request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise RequestValidationError.missing("query", name)
    return value


def repo_errors(exc: Exception) -> RequestValidationError:
    """catalog.repo's RepoValidationError as a 422, one item per problem (each names
    the object and field at fault)."""
    items = [error_item(["body", *([e.field] if e.field else [])], str(e)) for e in getattr(exc, "errors", [])]
    return RequestValidationError(items or [error_item(["body"], str(exc))])


class VersionView(APIView):
    """GET /version. Names no registry object, so it needs a login but no permission."""

    schema = schema.VersionSchema()

    def get(self, request: Request) -> Response:
        return Response({"version": settings.SPECTACULAR_SETTINGS["VERSION"]})


class RegistryView(GatedAPIView):
    """A gated view serving one registry type, chosen per route: `as_view(registry_type=...)`."""

    registry_type: RegistryType | None = None
    operation = ""  # list | all | detail: what the OpenAPI schema documents
    schema = schema.RegistrySchema()

    @property
    def rtype(self) -> RegistryType:
        if self.registry_type is None:
            raise TypeError(f"{type(self).__name__} needs as_view(registry_type=...)")
        return self.registry_type

    def get_base_queryset(self) -> QuerySet:
        return self.rtype.queryset()

    def page_response(self, queryset: QuerySet) -> Response:
        items, pagination = paginate(queryset, parse_list_params(self.request.query_params, self.rtype.sorts))
        data = self.rtype.serializer(items, many=True).data
        return Response({self.rtype.list_key: data, "pagination": pagination})


class ObjectListView(RegistryView):
    """GET <type>?project=P lists; POST <type> applies one object (YAML-shaped body + project)."""

    operation = "list"
    parser_classes = [JSONParser]

    def get(self, request: Request) -> Response:
        queryset = self.queryset
        if self.rtype.project_scoped:
            queryset = queryset.filter(project__name=required_query(request, "project"))
        return self.page_response(queryset)

    def post(self, request: Request) -> Response:
        from catalog.repo import RepoValidationError, apply_object

        rtype = self.rtype
        name, project, spec = self.read_body(request.data)
        existing, new = self.old_and_new(name, project, spec.get("tags") or {})
        self.authorize_apply(existing, new)
        try:
            apply_object(project, rtype.object_type, spec, request.user, actor="api")
        except RepoValidationError as exc:
            raise repo_errors(exc) from exc
        return Response({"name": name, "project": project, "status": "applied"}, status=status.HTTP_201_CREATED)

    def read_body(self, body: Any) -> tuple[str, str, dict]:
        """(name, project, spec): the spec is the body without `project` (for a project,
        the body itself)."""
        if not isinstance(body, dict):
            raise RequestValidationError([error_item(["body"], "the body must be a JSON object")])
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RequestValidationError.missing("body", "name")
        tags = body.get("tags")
        if tags is not None and not isinstance(tags, dict):
            raise RequestValidationError.invalid("body", "tags", "tags must be a mapping of tag to value")
        if not self.rtype.project_scoped:
            return name, name, dict(body)
        project = body.get("project")
        if not isinstance(project, str) or not project.strip():
            raise RequestValidationError.missing("body", "project")
        return name, project, {k: v for k, v in body.items() if k != "project"}

    def old_and_new(self, name: str, project: str, tags: dict) -> tuple[Any, Any]:
        """The stored object (or None) and an unsaved instance of its state after the
        apply, carrying what permissions match on: project, name, tags."""
        model = self.rtype.model
        if not self.rtype.project_scoped:
            existing = Project.objects.filter(name=name).first()
            return existing, Project(pk=existing.pk if existing else None, name=name, tags=tags)
        existing = model.objects.select_related("project").filter(project__name=project, name=name).first()
        if existing is not None:
            return existing, model(project=existing.project, name=name, tags=tags)
        owner = Project.objects.filter(name=project).first() or Project(name=project)
        return existing, model(project=owner, name=name, tags=tags)


class ObjectAllView(RegistryView):
    """GET <type>/all: the objects of every project the user may DESCRIBE."""

    operation = "all"

    def get(self, request: Request) -> Response:
        return self.page_response(self.queryset)


class ObjectDetailView(RegistryView):
    """GET <type>/{name}?project=P describes one object; DELETE removes it."""

    operation = "detail"

    def lookup(self, request: Request, name: str, queryset: QuerySet) -> tuple[QuerySet, str]:
        if not self.rtype.project_scoped:
            return queryset.filter(name=name), name
        project = required_query(request, "project")
        return queryset.filter(project__name=project, name=name), project

    def get(self, request: Request, name: str) -> Response:
        queryset, project = self.lookup(request, name, self.queryset)
        obj = self.get_gated_object(queryset, self.rtype.not_found(name, project))
        return Response(self.rtype.serializer(obj).data)

    def delete(self, request: Request, name: str) -> Response:
        from catalog.repo import ObjectNotFound, RepoValidationError, delete_object

        rtype = self.rtype
        base = rtype.model.objects.all() if not rtype.project_scoped else rtype.model.objects.select_related("project")
        queryset, project = self.lookup(request, name, base)
        self.get_gated_object(queryset, rtype.not_found(name, project))
        try:
            delete_object(project, rtype.object_type, name, request.user, actor="api")
        except ObjectNotFound as exc:
            raise Http404(rtype.not_found(name, project)) from exc
        except RepoValidationError as exc:
            raise repo_errors(exc) from exc
        return Response({"name": name, "project": project, "status": "deleted"})


class FeatureBaseView(GatedAPIView):
    """Base of the /features views: single features, visible when their view is."""

    queryset = Field.objects.select_related("feature_view__project", "on_demand_feature_view__project").annotate(
        sort_view=Coalesce(F("feature_view__name"), F("on_demand_feature_view__name")),
        sort_project=Coalesce(F("feature_view__project__name"), F("on_demand_feature_view__project__name")),
    )
    operation = ""
    schema = schema.FeatureSchema()

    def page_response(self, queryset: QuerySet) -> Response:
        params = parse_list_params(self.request.query_params, FEATURE_SORTS)
        items, pagination = paginate(queryset.order_by("sort_project", "sort_view", "position", "name"), params)
        return Response({"features": FeatureSerializer(items, many=True).data, "pagination": pagination})


class FeatureListView(FeatureBaseView):
    """GET features?project=P."""

    operation = "list"

    def get(self, request: Request) -> Response:
        return self.page_response(self.queryset.filter(sort_project=required_query(request, "project")))


class FeatureAllView(FeatureBaseView):
    """GET features/all."""

    operation = "all"

    def get(self, request: Request) -> Response:
        return self.page_response(self.queryset)


class FeatureDetailView(FeatureBaseView):
    """GET features/{feature_view}/{name}?project=P."""

    operation = "detail"

    def get(self, request: Request, feature_view: str, name: str) -> Response:
        project = required_query(request, "project")
        queryset = self.queryset.filter(sort_project=project, sort_view=feature_view, name=name)
        message = f"Feature {name} does not exist in feature view {feature_view} in project {project}"
        return Response(FeatureSerializer(self.get_gated_object(queryset, message)).data)
