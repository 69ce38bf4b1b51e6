"""OIDC JWT access tokens from the configured provider, verified locally against its JWKS.

Feast's OIDC parser (permissions/auth/oidc_token_parser.py) with its v0.66 checks made
unconditional where they can be:

- the header's `alg` must be on the allow-list (LARDER_OIDC_ALGORITHMS, asymmetric
  algorithms only: `none` and HS* are never accepted, whatever the setting says), and
  it is checked before any key is looked up, so an HS256 token "signed" with the
  provider's public key is refused (algorithm confusion);
- the key comes from the JWKS by `kid` and must be of the algorithm's type;
- signature, `exp` (required), `nbf` and `iat` with LARDER_OIDC_LEEWAY_SECONDS of leeway,
  `iss` whenever an issuer is known (LARDER_OIDC_ISSUER or the discovery document), and
  `aud` when LARDER_OIDC_AUDIENCE is set.

The JWKS is fetched over HTTP and kept for LARDER_OIDC_JWKS_CACHE_SECONDS. An unknown
`kid` (the provider rotated its keys) refreshes it once, at most every
LARDER_OIDC_JWKS_MIN_REFRESH_SECONDS, so a flood of made-up kids cannot hammer the
provider. Without LARDER_OIDC_DISCOVERY_URL or LARDER_OIDC_JWKS_URL this verifier
claims no token.
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from rest_framework import exceptions, status

from access.identity.authentication import invalid_token, looks_like_jwt
from access.identity.claims import Identity, LocalAccountConflict, extract_identity, refuse_local_account, sync_groups

log = logging.getLogger(__name__)

# Asymmetric algorithms only: a JWKS holds public keys, and an HMAC "verified" with a
# public key proves nothing. Anything else in the setting is ignored.
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


class IdentityProviderUnavailable(exceptions.APIException):
    """The provider's discovery document or JWKS could not be fetched and none is cached."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The identity provider could not be reached to verify the token"
    default_code = "identity_provider_unavailable"


def _fetch_json(url: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=settings.LARDER_OIDC_HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdentityProviderUnavailable() from exc
    if not isinstance(body, dict):
        raise IdentityProviderUnavailable()
    return body


@dataclass
class _Keys:
    """One JWKS document as fetched, with the keys parsed so far per (kid, alg)."""

    by_kid: dict[str | None, dict[str, Any]]
    fetched_at: float
    parsed: dict[tuple[str | None, str], jwt.PyJWK] = field(default_factory=dict)


def _signing_keys(document: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    keys = [k for k in document.get("keys") or [] if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    by_kid: dict[str | None, dict[str, Any]] = {k["kid"]: k for k in keys if isinstance(k.get("kid"), str)}
    if len(keys) == 1:
        by_kid[None] = keys[0]  # a token without `kid` may use the provider's only key
    return by_kid


class JwksCache:
    """Per-process cache of JWKS documents, by URL; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, _Keys] = {}
        self._kid_refresh_at: dict[str, float] = {}
        self._documents: dict[str, tuple[dict[str, Any], float]] = {}

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._kid_refresh_at.clear()
            self._documents.clear()

    def discovery(self, url: str) -> dict[str, Any]:
        """The provider's `.well-known/openid-configuration`, kept as long as a JWKS."""
        with self._lock:
            cached = self._documents.get(url)
            if cached is None or time.monotonic() - cached[1] >= settings.LARDER_OIDC_JWKS_CACHE_SECONDS:
                cached = (_fetch_json(url), time.monotonic())
                self._documents[url] = cached
            return cached[0]

    def signing_key(self, url: str, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The key `kid` of the JWKS at `url`, prepared for `alg`; None when it is not there
        even after a refresh, or when it does not fit `alg`."""
        with self._lock:
            keys = self._current(url)
            jwk = keys.by_kid.get(kid)
            if jwk is None and self._may_refresh_for_kid(url):
                keys = self._refresh(url)
                jwk = keys.by_kid.get(kid)
            if jwk is None:
                return None
            if "alg" in jwk and jwk["alg"] != alg:
                return None
            parsed = keys.parsed.get((kid, alg))
            if parsed is None:
                try:
                    parsed = jwt.PyJWK(jwk, algorithm=alg)
                except (jwt.PyJWTError, NotImplementedError, ValueError, TypeError):
                    return None  # an EC key for RS256, an unsupported curve...
                keys.parsed[(kid, alg)] = parsed
            return parsed

    def _current(self, url: str) -> _Keys:
        keys = self._keys.get(url)
        if keys is None or time.monotonic() - keys.fetched_at >= settings.LARDER_OIDC_JWKS_CACHE_SECONDS:
            keys = self._refresh(url, stale=keys)
        return keys

    def _may_refresh_for_kid(self, url: str) -> bool:
        now = time.monotonic()
        last = self._kid_refresh_at.get(url)
        if last is not None and now - last < settings.LARDER_OIDC_JWKS_MIN_REFRESH_SECONDS:
            return False
        self._kid_refresh_at[url] = now
        return True

    def _refresh(self, url: str, stale: _Keys | None = None) -> _Keys:
        stale = stale or self._keys.get(url)
        try:
            keys = _Keys(by_kid=_signing_keys(_fetch_json(url)), fetched_at=time.monotonic())
        except IdentityProviderUnavailable:
            if stale is None:
                raise
            log.warning("JWKS at %s unreachable; keeping the keys fetched before", url)
            stale.fetched_at = time.monotonic()  # try again after another cache period
            return stale
        self._keys[url] = keys
        return keys


jwks_cache = JwksCache()


@dataclass(frozen=True)
class Provider:
    """What a token from the configured provider is checked against."""

    jwks_url: str
    issuer: str
    audience: tuple[str, ...]
    algorithms: frozenset[str]
    leeway: int


def _as_list(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(item).strip() for item in items if str(item).strip()]


def configured_provider() -> Provider | None:
    """The provider from settings (explicit values win over discovery); None if none is set."""
    discovery_url = settings.LARDER_OIDC_DISCOVERY_URL
    jwks_url, issuer = settings.LARDER_OIDC_JWKS_URL, settings.LARDER_OIDC_ISSUER
    if not discovery_url and not jwks_url:
        return None
    if discovery_url and not (jwks_url and issuer):
        document = jwks_cache.discovery(discovery_url)
        jwks_url = jwks_url or str(document.get("jwks_uri") or "")
        issuer = issuer or str(document.get("issuer") or "")
        if not jwks_url:
            raise IdentityProviderUnavailable("The identity provider's discovery document names no jwks_uri")
    return Provider(
        jwks_url=jwks_url,
        issuer=issuer,
        audience=tuple(_as_list(settings.LARDER_OIDC_AUDIENCE)),
        algorithms=frozenset(_as_list(settings.LARDER_OIDC_ALGORITHMS)) & ASYMMETRIC,
        leeway=int(settings.LARDER_OIDC_LEEWAY_SECONDS),
    )


def decode_token(token: str, provider: Provider) -> dict[str, Any]:
    """The verified claims of `token`; AuthenticationFailed for any flaw."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise invalid_token() from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in provider.algorithms or not isinstance(kid, str | None):
        raise invalid_token()
    key = jwks_cache.signing_key(provider.jwks_url, kid, alg)
    if key is None:
        raise invalid_token()
    required = ["exp", *(["iss"] if provider.issuer else []), *(["aud"] if provider.audience else [])]
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=list(provider.audience) or None,
            issuer=provider.issuer or None,
            leeway=provider.leeway,
            options={"require": required, "verify_aud": bool(provider.audience)},
        )
    except (jwt.PyJWTError, TypeError, ValueError):
        raise invalid_token() from None
    if not isinstance(claims, dict):
        raise invalid_token()
    return claims


def user_for(identity: Identity) -> AbstractBaseUser:
    """The Django user named by the token, created on first sight: no usable password
    (they sign in through the provider only), never staff."""
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    if len(identity.username) > user_model._meta.get_field(username_field).max_length:
        raise invalid_token()
    user = user_model._default_manager.filter(**{username_field: identity.username}).first()
    if user is None:
        user = user_model(**{username_field: identity.username}, email=identity.email)
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # created by a concurrent request
            user = user_model._default_manager.get(**{username_field: identity.username})
    else:
        try:
            refuse_local_account(user, external=True)
        except LocalAccountConflict as exc:
            log.warning("bearer token refused: %s", exc)
            raise invalid_token() from None
    if identity.email and user.email != identity.email:
        user.email = identity.email
        user.save(update_fields=["email"])
    return user


def verify(token: str, request: Any) -> tuple[AbstractBaseUser, dict[str, Any]] | None:
    """Bearer verifier (access.identity.authentication): JWTs of the configured provider."""
    if not looks_like_jwt(token):
        return None
    provider = configured_provider()
    if provider is None:
        return None
    claims = decode_token(token, provider)
    try:
        identity = extract_identity(claims)
    except ValueError:
        raise invalid_token() from None
    user = user_for(identity)
    if not user.is_active:
        raise invalid_token()
    sync_groups(user, identity)
    return user, claims
