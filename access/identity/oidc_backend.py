"""Browser login through OIDC (mozilla-django-oidc), with Larder's identity rules.

The authorization-code flow with PKCE is mozilla-django-oidc's; this backend decides
who the person is: the username, roles and groups come from `extract_identity` over
the ID token's claims merged with userinfo's (userinfo, fetched last, wins on a
clash; its `sub` must be the ID token's), the user is created on first sign-in (no
usable password) and their Django Groups are re-synced at every login, so a role
removed at the provider is gone at the next sign-in.

On top of mozilla-django-oidc's signature and nonce checks, the ID token's `aud` must
name the portal's client (and `azp` too when there are several audiences), and its
`iss` must be the provider's issuer when one is known.
"""

import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .claims import Identity, LocalAccountConflict, extract_identity, refuse_local_account, sync_groups
from .rp import ProviderUnavailable, client_secret, external_configured, provider_endpoints

log = logging.getLogger(__name__)

# What a bad or unreachable provider answer raises on the way (HTTP errors, a token that
# does not verify or has expired, a JWKS without the key, a body that is not JSON): each
# ends the sign-in attempt on the login page with a message, never a server error.
SIGN_IN_FAILURES = (
    requests.RequestException,
    jwt.PyJWTError,
    SuspiciousOperation,
    ProviderUnavailable,
    KeyError,
    ValueError,
)


class LarderOIDCBackend(OIDCAuthenticationBackend):
    """Endpoints and secret are read when a login needs them (access.identity.rp), not
    when Django instantiates the backend (it does so for every password check too)."""

    OIDC_RP_SIGN_ALGO = "RS256"
    OIDC_RP_IDP_SIGN_KEY = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return provider_endpoints().token

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return provider_endpoints().userinfo

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return provider_endpoints().jwks

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return settings.LARDER_OIDC_CLIENT_ID

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:
        return client_secret()

    # -- the flow -------------------------------------------------------------------

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractBaseUser | None:
        """Only the OIDC callback view calls with `nonce` and `code_verifier`; password
        checks (the provider's sign-in page, the local form) pass through untouched."""
        if request is None or "nonce" not in kwargs or "code_verifier" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except SIGN_IN_FAILURES as exc:
            log.warning("OIDC sign-in failed: %s: %s", type(exc).__name__, exc)
            return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        client_id = settings.LARDER_OIDC_CLIENT_ID
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if client_id not in audiences:
            raise SuspiciousOperation(f"the ID token is not for this client (aud={audiences!r})")
        if len(audiences) > 1 and payload.get("azp") != client_id:
            raise SuspiciousOperation("the ID token names several audiences and another authorized party")
        issuer = provider_endpoints().issuer
        if issuer and payload.get("iss") != issuer:
            raise SuspiciousOperation(f"the ID token comes from {payload.get('iss')!r}, not {issuer!r}")
        return payload

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The ID token's claims merged with userinfo's (the name is mozilla-django-oidc's)."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = super().get_userinfo(access_token, id_token, payload)
            if userinfo.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("userinfo describes another subject than the ID token")
            claims.update(userinfo)
        return claims

    # -- claims to user ---------------------------------------------------------------

    def identity(self, claims: dict[str, Any]) -> Identity:
        try:
            identity = extract_identity(claims)
        except ValueError as exc:
            raise SuspiciousOperation(str(exc)) from exc
        max_length = self.UserModel._meta.get_field(self.UserModel.USERNAME_FIELD).max_length
        if max_length and len(identity.username) > max_length:
            raise SuspiciousOperation(f"the username claim is longer than {max_length} characters")
        return identity

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        self.identity(claims)
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet:
        username = self.identity(claims).username
        return self.UserModel._default_manager.filter(**{self.UserModel.USERNAME_FIELD: username})

    def create_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        identity = self.identity(claims)
        user = self.UserModel(**{self.UserModel.USERNAME_FIELD: identity.username}, email=identity.email)
        user.set_unusable_password()  # signs in through the provider only
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # the same person's first two logins at once
            user = self.UserModel._default_manager.get(**{self.UserModel.USERNAME_FIELD: identity.username})
        sync_groups(user, identity)
        return user

    def update_user(self, user: AbstractBaseUser, claims: dict[str, Any]) -> AbstractBaseUser:
        identity = self.identity(claims)
        try:
            refuse_local_account(user, external=external_configured())
        except LocalAccountConflict as exc:
            raise SuspiciousOperation(str(exc)) from exc
        if identity.email and user.email != identity.email:
            user.email = identity.email
            user.save(update_fields=["email"])
        sync_groups(user, identity)
        return user

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        """Django's rule, not mozilla-django-oidc's: a deactivated user's session ends."""
        return ModelBackend.get_user(self, user_id)
