"""Registry REST API under /api/v1/ (Feast's REST registry paths).

Feast's paths have no trailing slash; each route also answers with one, directly
rather than by redirect (a redirected POST loses its body in many clients). The
slash twins stay out of the OpenAPI schema.
"""

from django.urls import URLPattern, path
from rest_framework.views import APIView

from . import lineage, views
from .search import SearchView
from .specs import OBJECT_TYPES, PROJECT, RegistryType

app_name = "catalog-api"

READ = ["get", "head"]


def feast_path(route: str, view: type[APIView], name: str, **initkwargs) -> list[URLPattern]:
    return [
        path(route, view.as_view(**initkwargs), name=name),
        path(f"{route}/", view.as_view(schema=None, **initkwargs)),
    ]


def type_routes(rtype: RegistryType) -> list[URLPattern]:
    """`<type>` (list, apply), `<type>/all`, `<type>/<name>` (describe, delete); `all`
    comes first, so an object named "all" is reachable only through the list (as in Feast)."""
    slug = rtype.object_type.replace("_", "-")
    writes = ["post"] if rtype.writable else []
    deletes = ["delete"] if rtype.writable else []
    routes = feast_path(
        rtype.path, views.ObjectListView, f"{slug}-list", registry_type=rtype, http_method_names=READ + writes
    )
    if rtype.project_scoped:
        routes += feast_path(
            f"{rtype.path}/all", views.ObjectAllView, f"{slug}-all", registry_type=rtype, http_method_names=READ
        )
    routes += feast_path(
        f"{rtype.path}/<str:name>",
        views.ObjectDetailView,
        f"{slug}-detail",
        registry_type=rtype,
        http_method_names=READ + deletes,
    )
    return routes


urlpatterns = [
    *feast_path("version", views.VersionView, "version", http_method_names=READ),
    *type_routes(PROJECT),
    *[route for rtype in OBJECT_TYPES for route in type_routes(rtype)],
    *feast_path("features", views.FeatureListView, "feature-list", http_method_names=READ),
    *feast_path("features/all", views.FeatureAllView, "feature-all", http_method_names=READ),
    *feast_path(
        "features/<str:feature_view>/<str:name>", views.FeatureDetailView, "feature-detail", http_method_names=READ
    ),
    *feast_path("search", SearchView, "search", http_method_names=READ),
    # Lineage (catalog/api/lineage.py): one route per object type, Feast's
    # /lineage/objects/{object_type}/{object_name} with the type spelled out.
    *feast_path("lineage/registry", lineage.RegistryLineageView, "lineage-registry", http_method_names=READ),
    *[
        route
        for object_type in lineage.TYPES
        for route in feast_path(
            f"lineage/objects/{object_type}/<str:name>",
            lineage.ObjectLineageView,
            f"lineage-{object_type}",
            object_type=object_type,
            http_method_names=READ,
        )
    ],
]
