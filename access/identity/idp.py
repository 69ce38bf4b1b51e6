"""The built-in provider's own sign-in: its page (/idp/login/) and its session.

The provider and the portal share one Django site and one session cookie, but not one
sign-in: signing in on the provider's page records the person in the session under
IDP_SESSION_KEY only, never as the portal's Django user. The portal's session begins
solely at the OIDC callback (access.identity.oidc_backend), so the built-in provider
is driven through the same flow, claims and group sync as an external one, and
LARDER_LOCAL_LOGIN=false holds for the portal even with the provider's form on the
same host. DOT's authorize and logout views see the provider's user through
`ProviderSessionMixin`.

The provider's users are Django's users, checked by ModelBackend (the demo users).
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic.edit import FormView
from oauth2_provider import views as dot_views

from .rp import BUILTIN_PROVIDER_NAME

IDP_SESSION_KEY = "_larder_idp_user"
IDP_LOGIN_URL = "/idp/login/"


def provider_sign_in(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Remember `user` as signed in at the provider (a fresh session key: no fixation)."""
    request.session.cycle_key()
    request.session[IDP_SESSION_KEY] = {"id": user.pk, "hash": user.get_session_auth_hash()}


def provider_user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    """Who is signed in at the provider in this session. A deactivated user, or one whose
    password changed since, is signed out (the same rule Django applies to sessions)."""
    data = request.session.get(IDP_SESSION_KEY)
    if not isinstance(data, dict):
        return AnonymousUser()
    user = get_user_model()._default_manager.filter(pk=data.get("id"), is_active=True).first()
    if user is None or not constant_time_compare(str(data.get("hash", "")), user.get_session_auth_hash()):
        request.session.pop(IDP_SESSION_KEY, None)
        return AnonymousUser()
    return user


@method_decorator([sensitive_post_parameters(), csrf_protect, never_cache], name="dispatch")
class ProviderLoginView(FormView):
    """The provider's username/password page; sends the browser back to `next` (the
    authorize request that brought it here)."""

    template_name = "registration/idp_login.html"
    form_class = AuthenticationForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def next_url(self) -> str:
        candidate = self.request.POST.get("next") or self.request.GET.get("next") or ""
        safe = url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
        )
        return candidate if candidate and safe else "/"

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        provider_sign_in(self.request, form.get_user())
        return HttpResponseRedirect(self.next_url())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "next": self.next_url(),
            "provider_name": BUILTIN_PROVIDER_NAME,
            "client_name": "Larder",
        }


class ProviderSessionMixin:
    """DOT's views decide with `request.user`: make that the provider's user."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.user = provider_user(request)
        return super().dispatch(request, *args, **kwargs)


class AuthorizationView(ProviderSessionMixin, dot_views.AuthorizationView):
    """/o/authorize/: not signed in at the provider -> its own sign-in page, never the
    portal's (whose only button leads back here)."""

    login_url = IDP_LOGIN_URL


class RPInitiatedLogoutView(dot_views.RPInitiatedLogoutView):
    """/o/logout/: without a prompt only when the id_token_hint names whoever is signed
    in (at the portal or the provider), or nobody is; otherwise DOT's confirm page, so a
    link from elsewhere cannot sign a person out behind their back."""

    def must_prompt(self, token_user: AbstractBaseUser | None) -> bool:
        current = [u for u in (self.request.user, provider_user(self.request)) if u.is_authenticated]
        if not current:
            return False
        return token_user is None or any(u != token_user for u in current)
