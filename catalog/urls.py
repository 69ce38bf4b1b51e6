"""Catalog pages: readable, project-scoped URLs.

Lists live at the top (`/feature-views/?project=P&...`), objects under their project
(`/projects/<project>/feature-views/<name>/`), features under their view
(`/projects/<project>/feature-views/<view>/features/<feature>/`).
"""

from django.urls import path

from .views import details, home, lineage, lists, search, stats

app_name = "catalog"

DETAILS = {
    "entities": details.entity_detail,
    "data-sources": details.data_source_detail,
    "feature-views": details.feature_view_detail,
    "on-demand-feature-views": details.on_demand_detail,
    "feature-services": details.feature_service_detail,
    "saved-datasets": details.saved_dataset_detail,
    "permissions": details.permission_detail,
}

urlpatterns = [
    path("", home.home, name="home"),
    path("search/", search.search_page, name="search"),
    *[path(f"{slug}/", lists.list_view(slug), name=slug) for slug in lists.SPECS],
    path("projects/<str:project>/", details.project_detail, name="project-detail"),
    path("projects/<str:project>/lineage/", lineage.project_lineage, name="project-lineage"),
    *[
        path(f"projects/<str:project>/{slug}/<str:name>/", view, name=f"{slug}-detail")
        for slug, view in DETAILS.items()
    ],
    path(
        "projects/<str:project>/feature-views/<str:name>/statistics/",
        stats.recompute_statistics,
        name="feature-views-statistics",
    ),
    path(
        "projects/<str:project>/feature-views/<str:view>/features/<str:feature>/",
        details.feature_detail,
        name="feature-views-feature",
    ),
    path(
        "projects/<str:project>/on-demand-feature-views/<str:odfv>/features/<str:feature>/",
        details.on_demand_feature_detail,
        name="on-demand-feature-views-feature",
    ),
]
