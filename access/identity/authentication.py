"""Bearer tokens on the API: one DRF authentication class, a chain of verifiers.

`Authorization: Bearer <token>` (scheme case-insensitive, as Feast's REST server reads
it) is offered to each verifier named in settings `LARDER_BEARER_VERIFIERS`, in order.
A verifier is `verify(token, request) -> (user, auth_info) | None`:

- None: not my kind of token, ask the next verifier;
- (user, auth_info): valid, this is who calls;
- raises AuthenticationFailed(INVALID_TOKEN): my kind, but bad (signature, expiry...).

Kinds are told apart cheaply and before any cryptography: personal tokens start with
`lrd_`, JWTs are three base64url segments, anything else is an opaque provider token.
When no verifier claims a token the answer is the same 401 as for a bad one, so a
caller cannot probe which kinds are enabled. A token that held is remembered for a
while (access.identity.bearer_cache): the access epoch is read first, and the cache
answers only under that same epoch.

Kept free of rest_framework.views and model imports: DRF loads this class while
importing its views module; the verifiers are imported on first use.
"""

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

INVALID_TOKEN = "Invalid or expired access token"  # noqa: S105 - a message, not a secret
Verifier = Callable[[str, Any], "tuple[Any, Any] | None"]

_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def invalid_token() -> AuthenticationFailed:
    """The one 401 every verifier raises for a token of its kind that does not hold."""
    return AuthenticationFailed(INVALID_TOKEN)


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated base64url segments (the signature may be empty for `alg: none`)."""
    return bool(_JWT_SHAPE.match(token))


@lru_cache(maxsize=8)
def _load_verifiers(paths: tuple[str, ...]) -> tuple[Verifier, ...]:
    return tuple(import_string(path) for path in paths)


def bearer_verifiers() -> Sequence[Verifier]:
    """The verifier functions of LARDER_BEARER_VERIFIERS, imported once per distinct list."""
    return _load_verifiers(tuple(getattr(settings, "LARDER_BEARER_VERIFIERS", ())))


def bearer_token(request: Request) -> str | None:
    """The token of a request's `Authorization: Bearer` header (token_from_header)."""
    return token_from_header(get_authorization_header(request))


def token_from_header(header: bytes) -> str | None:
    """The token of an `Authorization` header value; None for no header or another scheme.

    A Bearer header without a token (or with spaces inside it) is a malformed token: 401."""
    parts = header.split(None, 1)
    if not parts or parts[0].lower() != b"bearer":
        return None
    if len(parts) != 2:
        raise invalid_token()
    try:
        token = parts[1].decode("ascii").strip()
    except UnicodeDecodeError:
        raise invalid_token() from None
    if not token or " " in token:
        raise invalid_token()
    return token


class BearerAuthentication(BaseAuthentication):
    """Identifies API callers by bearer token through the verifier chain (module docstring)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        from access import epoch
        from access.identity import bearer_cache

        token = bearer_token(request)
        if token is None:
            return None
        current = epoch.current()  # before verifying: a later revocation must not be cached
        hit = bearer_cache.lookup(token, current)
        if hit is not None:
            return hit.request_user(), hit.auth_info
        for verify in bearer_verifiers():
            result = verify(token, request)
            if result is not None:
                user, auth_info = result
                if not user.is_active:
                    raise invalid_token()
                bearer_cache.remember(token, current, user, auth_info, verify)
                return user, auth_info
        raise invalid_token()

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="larder"'
