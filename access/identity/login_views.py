"""The portal's sign-in page and the admin's: OIDC first, a local password only on request.

/accounts/login/ offers "Sign in with <provider>" (/oidc/authenticate/). The local
username/password form is shown, and its POST accepted, only with
LARDER_LOCAL_LOGIN=true (the demo); otherwise a POST of credentials is refused with
403 before any password is checked. The admin's own login form is the same door and
follows the same switch.
"""

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from .rp import ProviderUnavailable, provider_configured, provider_endpoints, provider_name

log = logging.getLogger(__name__)

LOCAL_LOGIN_DISABLED = "Signing in with a local password is disabled here: use the sign-in button."


class PortalLoginView(auth_views.LoginView):
    template_name = "registration/login.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LARDER_LOCAL_LOGIN:
            context = self.page_context(refused=LOCAL_LOGIN_DISABLED)
            return render(request, self.template_name, context, status=403)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), **self.page_context()}

    def page_context(self, refused: str = "") -> dict[str, Any]:
        next_url = self.get_redirect_url()
        query = urlencode({REDIRECT_FIELD_NAME: next_url}) if next_url else ""
        return {
            "next": next_url,
            "local_login": settings.LARDER_LOCAL_LOGIN,
            "provider_configured": provider_configured(),
            "provider_name": provider_name(),
            "oidc_url": reverse("oidc_authentication_init") + (f"?{query}" if query else ""),
            "sign_in_failed": "failed" in self.request.GET,
            "refused": refused,
        }


def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """/admin/login/: Django's admin form with LARDER_LOCAL_LOGIN, else the portal's
    sign-in (a signed-in staff member goes straight on; anybody else is told why not)."""
    if settings.LARDER_LOCAL_LOGIN:
        return admin.site.login(request, extra_context)
    if request.method == "POST":
        return render(request, "registration/sign_in_problem.html", {"reason": LOCAL_LOGIN_DISABLED}, status=403)
    next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("admin:index")
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        return HttpResponseRedirect(next_url)
    if user.is_authenticated:
        reason = f"You are signed in as {user.get_username()}, who may not use the admin site."
        return render(request, "registration/sign_in_problem.html", {"reason": reason}, status=403)
    return redirect_to_login(next_url, settings.LOGIN_URL)


class AuthenticationRequestView(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: mozilla-django-oidc's start of the code flow (state, nonce,
    PKCE S256 challenge), with the provider's endpoint resolved at request time."""

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the parent reads fixed endpoint settings here

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return settings.LARDER_OIDC_CLIENT_ID

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:
        return provider_endpoints().authorization

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            provider_endpoints()
        except ProviderUnavailable as exc:
            log.error("cannot start an OIDC sign-in: %s", exc)
            context = {"reason": "The sign-in provider is not available right now. Try again later, or ask an admin."}
            return render(request, "registration/sign_in_problem.html", context, status=503)
        return super().get(request)
