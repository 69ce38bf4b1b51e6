"""Bearer verifier for the built-in provider's opaque access tokens (django-oauth-toolkit).

Last in LARDER_BEARER_VERIFIERS: it claims whatever is neither a personal `lrd_` token
nor a JWT, and only while LARDER_BUILTIN_IDP is on (no token endpoint, no tokens).

DOT 3.4 finds a token by `token_checksum`, the SHA-256 of the token text, whether or
not the text itself is kept (Larder sets COMPLIANT_BCP_RFC9700_TOKEN_STORAGE: it is
not). A revoked token is deleted by DOT, so "revoked" and "unknown" are one case.

Who calls: a token issued to a user (authorization code) is that user; a
client-credentials token has no user and stands for the ServiceAccount bound to its
Application, whose own Django user carries the roles an admin gave it. No
ServiceAccount, no access. Either way the token must hold LARDER_API_SCOPE.
"""

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from oauth2_provider.models import get_access_token_model

from access.identity.authentication import invalid_token, looks_like_jwt
from access.models import ServiceAccount

log = logging.getLogger(__name__)


def token_checksum(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify(token: str, request: Any) -> tuple[AbstractBaseUser, Any] | None:
    """(user, AccessToken) for a live token holding the API scope; 401 for any other
    opaque token; None for other kinds (or when the built-in provider is off)."""
    if not settings.LARDER_BUILTIN_IDP or token.startswith("lrd_") or looks_like_jwt(token):
        return None
    access = (
        get_access_token_model()
        .objects.select_related("user", "application")
        .filter(token_checksum=token_checksum(token))
        .first()
    )
    if access is None or access.is_expired():
        raise invalid_token()
    if not access.allow_scopes([settings.LARDER_API_SCOPE]):
        log.info("access token #%s lacks the %r scope", access.pk, settings.LARDER_API_SCOPE)
        raise invalid_token()
    if access.user is not None:
        user = access.user
    else:
        account = None
        if access.application_id is not None:  # filter(application_id=None) would match unbound accounts
            account = ServiceAccount.objects.select_related("user").filter(application_id=access.application_id).first()
        if account is None:
            log.info("client-credentials token #%s: its application is no service account", access.pk)
            raise invalid_token()
        user = account.user
    if not user.is_active:
        raise invalid_token()
    return user, access
