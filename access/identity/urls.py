"""Sign-in routes: the portal's login/logout, the OIDC client (/oidc/) and, with
LARDER_BUILTIN_IDP, the built-in provider (/o/) and its sign-in page (/idp/login/).

Only the provider endpoints Larder uses are mounted: not DOT's application-management
pages, device flow or dynamic client registration. Every path here is public
(settings LARDER_PUBLIC_PATHS) and listed in tests/unit/test_url_gate.py.
"""

from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path
from mozilla_django_oidc import views as oidc_views
from oauth2_provider import views as dot_views

from . import idp
from .login_views import AuthenticationRequestView, PortalLoginView, admin_login

oidc_client_patterns = [
    path("authenticate/", AuthenticationRequestView.as_view(), name="oidc_authentication_init"),
    path("callback/", oidc_views.OIDCAuthenticationCallbackView.as_view(), name="oidc_authentication_callback"),
]

# DOT's names (app_name "oauth2_provider"): its views reverse them.
provider_patterns = [
    path("authorize/", idp.AuthorizationView.as_view(), name="authorize"),
    path("token/", dot_views.TokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", dot_views.IntrospectTokenView.as_view(), name="introspect"),
    path(
        ".well-known/openid-configuration",
        dot_views.ConnectDiscoveryInfoView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(".well-known/jwks.json", dot_views.JwksInfoView.as_view(), name="jwks-info"),
    path("userinfo/", dot_views.UserInfoView.as_view(), name="user-info"),
    path("logout/", idp.RPInitiatedLogoutView.as_view(), name="rp-initiated-logout"),
]


def identity_urlpatterns() -> list[URLPattern | URLResolver]:
    patterns: list[URLPattern | URLResolver] = [
        path("accounts/login/", PortalLoginView.as_view(), name="login"),
        path("accounts/logout/", oidc_views.OIDCLogoutView.as_view(), name="logout"),
        path("admin/login/", admin_login, name="admin-login"),
        path("oidc/", include(oidc_client_patterns)),
    ]
    if settings.LARDER_BUILTIN_IDP:
        patterns += [
            path("o/", include((provider_patterns, "oauth2_provider"))),
            path("idp/login/", idp.ProviderLoginView.as_view(), name="idp-login"),
        ]
    return patterns
