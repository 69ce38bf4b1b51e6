"""Root URLs. Every pattern here is walked by tests/unit/test_url_gate.py."""

from django.contrib import admin
from django.urls import include, path

from access.identity.urls import identity_urlpatterns
from larder.health import health

urlpatterns = [
    path("health", health, name="health"),
    # Sign-in: /accounts/login|logout/, /oidc/, /admin/login/; with LARDER_BUILTIN_IDP also /o/ and /idp/login/.
    *identity_urlpatterns(),
    path("admin/", admin.site.urls),
    path("account/", include("access.urls")),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/", include("serving.historical.urls")),  # historical-features and its jobs
    path("api/", include("larder.schema_urls")),
    # Feast's feature-server endpoints at the root: /get-online-features, /push, /write-to-online-store.
    path("", include("serving.api.urls")),
    # /materialize, /materialize-incremental, /api/v1/materialization-jobs, the jobs page /materialization/.
    path("", include("materialization.urls")),
    path("", include("catalog.urls")),
]
