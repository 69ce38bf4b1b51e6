"""Which OIDC provider the portal's browser login talks to, and where its endpoints are.

mozilla-django-oidc reads fixed endpoint settings; Larder resolves them here instead,
lazily, so that a discovery URL is fetched on the first login (not at import time, when
the provider may not be up yet) and kept:

- an external provider: LARDER_OIDC_DISCOVERY_URL, with any of the explicit
  LARDER_OIDC_*_ENDPOINT / LARDER_OIDC_JWKS_URL / LARDER_OIDC_ISSUER settings winning
  over what it says; or the explicit settings alone;
- otherwise, with LARDER_BUILTIN_IDP, the app's own provider under /o/: the browser
  goes to it on the host it is already on (relative URLs), the server-to-server calls
  (token, userinfo, JWKS) go to LARDER_PUBLIC_URL.
"""

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

log = logging.getLogger(__name__)

BUILTIN_PROVIDER_NAME = "Larder ID"


class ProviderUnavailable(Exception):
    """The provider's discovery document could not be fetched or lacks an endpoint."""


@dataclass(frozen=True)
class ProviderEndpoints:
    authorization: str
    token: str
    userinfo: str
    jwks: str
    end_session: str
    issuer: str


def external_configured() -> bool:
    return bool(settings.LARDER_OIDC_DISCOVERY_URL or settings.LARDER_OIDC_AUTHORIZATION_ENDPOINT)


def builtin_in_use() -> bool:
    """The portal signs people in through its own provider (no external one configured)."""
    return bool(settings.LARDER_BUILTIN_IDP) and not external_configured()


def provider_configured() -> bool:
    return external_configured() or builtin_in_use()


def provider_name() -> str:
    if settings.LARDER_OIDC_PROVIDER_NAME:
        return settings.LARDER_OIDC_PROVIDER_NAME
    return BUILTIN_PROVIDER_NAME if builtin_in_use() else "single sign-on"


_discovery_lock = threading.Lock()
_discovered: dict[str, dict[str, Any]] = {}


def discovery_document(url: str) -> dict[str, Any]:
    """The provider's openid-configuration, fetched once per process (a failure is not
    cached: the next login tries again)."""
    with _discovery_lock:
        if url not in _discovered:
            try:
                response = requests.get(url, timeout=settings.LARDER_OIDC_HTTP_TIMEOUT_SECONDS)
                response.raise_for_status()
                document = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise ProviderUnavailable(f"cannot read the OIDC discovery document at {url}: {exc}") from exc
            if not isinstance(document, dict):
                raise ProviderUnavailable(f"the OIDC discovery document at {url} is not a JSON object")
            _discovered[url] = document
        return _discovered[url]


def forget_discovery() -> None:
    with _discovery_lock:
        _discovered.clear()


def _builtin_endpoints() -> ProviderEndpoints:
    public = settings.LARDER_PUBLIC_URL.rstrip("/")
    issuer = settings.OAUTH2_PROVIDER.get("OIDC_ISS_ENDPOINT") or f"{public}/o"
    return ProviderEndpoints(
        authorization=reverse("oauth2_provider:authorize"),
        token=public + reverse("oauth2_provider:token"),
        userinfo=public + reverse("oauth2_provider:user-info"),
        jwks=public + reverse("oauth2_provider:jwks-info"),
        end_session=reverse("oauth2_provider:rp-initiated-logout"),
        issuer=issuer,
    )


def _external_endpoints() -> ProviderEndpoints:
    explicit = {
        "authorization": settings.LARDER_OIDC_AUTHORIZATION_ENDPOINT,
        "token": settings.LARDER_OIDC_TOKEN_ENDPOINT,
        "userinfo": settings.LARDER_OIDC_USERINFO_ENDPOINT,
        "jwks": settings.LARDER_OIDC_JWKS_URL,
        "end_session": settings.LARDER_OIDC_END_SESSION_ENDPOINT,
        "issuer": settings.LARDER_OIDC_ISSUER,
    }
    if settings.LARDER_OIDC_DISCOVERY_URL and not all(explicit.values()):
        document = discovery_document(settings.LARDER_OIDC_DISCOVERY_URL)
        names = {
            "authorization": "authorization_endpoint",
            "token": "token_endpoint",
            "userinfo": "userinfo_endpoint",
            "jwks": "jwks_uri",
            "end_session": "end_session_endpoint",
            "issuer": "issuer",
        }
        explicit = {key: value or str(document.get(names[key]) or "") for key, value in explicit.items()}
    missing = [key for key in ("authorization", "token", "jwks") if not explicit[key]]
    if missing:
        raise ProviderUnavailable("the OIDC provider has no " + ", ".join(f"{key} endpoint" for key in missing))
    return ProviderEndpoints(**explicit)


def provider_endpoints() -> ProviderEndpoints:
    """The endpoints of the provider in use; ProviderUnavailable when there is none."""
    if external_configured():
        return _external_endpoints()
    if builtin_in_use():
        return _builtin_endpoints()
    raise ProviderUnavailable("no OIDC provider is configured (LARDER_OIDC_DISCOVERY_URL or LARDER_BUILTIN_IDP)")


def client_secret() -> str:
    """The portal's client secret: LARDER_OIDC_CLIENT_SECRET, else the file
    `manage.py setup_identity` writes for the built-in provider."""
    if settings.LARDER_OIDC_CLIENT_SECRET:
        return settings.LARDER_OIDC_CLIENT_SECRET
    path = Path(settings.LARDER_OIDC_CLIENT_SECRET_FILE)
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def provider_logout_url(request: HttpRequest) -> str:
    """Where POST /accounts/logout/ sends the browser (mozilla-django-oidc's
    OIDC_OP_LOGOUT_URL_METHOD; called before the session ends): the provider's
    end-session endpoint with id_token_hint and post_logout_redirect_uri when it has
    one and this session signed in through it, else the login page."""
    local = settings.LOGOUT_REDIRECT_URL
    id_token = request.session.get("oidc_id_token")
    if not id_token or not provider_configured():
        return local
    try:
        end_session = provider_endpoints().end_session
    except ProviderUnavailable as exc:
        log.warning("signing out locally only: %s", exc)
        return local
    if not end_session:
        return local
    query = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": request.build_absolute_uri(local),
        "client_id": settings.LARDER_OIDC_CLIENT_ID,
    }
    return f"{end_session}{'&' if '?' in end_session else '?'}{urlencode(query)}"
