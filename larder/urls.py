"""Root URLs. Every pattern here is walked by tests/unit/test_url_gate.py."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from larder.health import health

urlpatterns = [
    path("health", health, name="health"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("catalog.api.urls")),
    path("api/", include("larder.schema_urls")),
    path("", include("catalog.urls")),
]
