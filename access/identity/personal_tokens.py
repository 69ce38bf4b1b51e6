"""Personal API tokens: issued on the token page, verified as bearer tokens.

Text `lrd_<prefix>_<secret>`: 8 + 32 characters from `secrets` (about 238 bits). The
database keeps the prefix (to find the row and to name the token in lists) and the
SHA-256 of the whole text, never the text: a leaked database gives no usable token.
The token carries its owner's roles (their Django Groups) as they are at each call,
so there is nothing to sync.
"""

import hashlib
import hmac
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from access import epoch
from access.identity.authentication import invalid_token
from access.models import ApiToken

TOKEN_PREFIX = "lrd_"  # noqa: S105 - the marker of the token kind, not a secret
PREFIX_LENGTH = 8
SECRET_LENGTH = 32
# last_used_at is written at most this often per token: not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_ALPHABET = string.ascii_letters + string.digits


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: AbstractBaseUser, name: str, days: int) -> tuple[ApiToken, str]:
    """Create a token for `user` valid for `days` (1..LARDER_API_TOKEN_MAX_DAYS); returns the
    row and the token text, which exists nowhere else afterwards."""
    if not 1 <= days <= settings.LARDER_API_TOKEN_MAX_DAYS:
        raise ValueError(f"a token lives 1 to {settings.LARDER_API_TOKEN_MAX_DAYS} days, not {days}")
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    text = f"{TOKEN_PREFIX}{prefix}_{secret}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=token_digest(text),
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    return token, text


def revoke(token: ApiToken) -> None:
    """Revoke once; revoking again keeps the first time."""
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=token.revoked_at)
        epoch.bump()  # processes that cached this token verify it again on its next use


def _touch(token: ApiToken, now: datetime) -> None:
    stale = now - LAST_USED_RESOLUTION
    ApiToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk).update(
        last_used_at=now
    )
    token.last_used_at = now


def on_cached_use(token: ApiToken) -> None:
    """A use answered from access.identity.bearer_cache still counts as a use."""
    now = datetime.now(UTC)
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        _touch(token, now)


def verify(token: str, request: Any) -> tuple[AbstractBaseUser, ApiToken] | None:
    """Bearer verifier (access.identity.authentication): `lrd_` tokens only."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if len(prefix) != PREFIX_LENGTH or not secret:
        raise invalid_token()
    digest = token_digest(token)
    # Normally one row per prefix; compare every candidate in constant time all the same.
    match = None
    for candidate in ApiToken.objects.filter(prefix=prefix).select_related("user"):
        if hmac.compare_digest(candidate.digest, digest):
            match = candidate
    now = datetime.now(UTC)
    if match is None or match.status(now) != "active" or not match.user.is_active:
        raise invalid_token()
    if match.last_used_at is None or match.last_used_at < now - LAST_USED_RESOLUTION:
        _touch(match, now)
    return match.user, match


verify.on_cached_use = on_cached_use  # type: ignore[attr-defined]
