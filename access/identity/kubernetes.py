"""Kubernetes service-account tokens as bearer tokens, Feast's `kubernetes` auth (issue 3, item 6).

A pod calls the API with its service-account token. Larder does not check that token's
signature itself: it asks the cluster, with a TokenReview (authentication.k8s.io/v1),
who the token belongs to. The roles are the Roles named by the RoleBindings in Larder's
own namespace whose subjects include that ServiceAccount (Feast's
`permissions/auth/kubernetes_token_parser.py` takes `roleRef.name`, and so do we). For a
reviewed user that is not a service account, RoleBindings in Larder's namespace and
ClusterRoleBindings naming the user or one of its groups count. The groups are the
TokenReview's groups (`system:serviceaccounts:<ns>` lets a Permission grant a whole namespace).

Every failure to reach the cluster fails closed (401) with its cause logged. Positive
reviews are cached per process for LARDER_KUBERNETES_CACHE_SECONDS, keyed by a SHA-256
of the token, never the token, so a model server's thousand calls a second do not make
a thousand TokenReviews; the cache is bounded and one review at a time runs per token.

Django users: `k8s:<ns>:<sa>` for service accounts and `k8s-user:<name>` for other
cluster users. Django's username validator refuses `:`, so no account created through a
form or `createsuperuser` can be one of these; the two prefixes keep the kinds apart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework.exceptions import AuthenticationFailed

from access.identity.claims import Identity, sync_groups

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from kubernetes.client import ApiClient

logger = logging.getLogger(__name__)

INVALID = "Invalid or expired access token"
LEGACY_ISSUER = "kubernetes/serviceaccount"
SA_PREFIX = "system:serviceaccount:"
MAX_CACHED_REVIEWS = 4096
API_TIMEOUT_SECONDS = 5.0
API_RETRIES = 1
USERNAME_MAX = 150  # django.contrib.auth User.username


class ClusterUnavailable(Exception):
    """The cluster API could not answer (down, refused Larder's credentials, bad answer)."""


@dataclass(frozen=True)
class KubernetesAuth:
    """What a review established; DRF exposes it as `request.auth`.

    `username` is Feast's form: `<ns>:<sa>` for service accounts, the reviewed name otherwise."""

    username: str
    django_username: str
    roles: frozenset[str]
    groups: frozenset[str]
    namespace: str | None = None


# -- which tokens are ours -------------------------------------------------------------


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT-shaped token, unverified (only to route it), or None."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def is_kubernetes_token(claims: dict[str, Any]) -> bool:
    """Bound tokens carry a `kubernetes.io` claim; legacy secret tokens the old issuer."""
    return "kubernetes.io" in claims or claims.get("iss") == LEGACY_ISSUER


# -- the cluster API -------------------------------------------------------------------


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def api_client() -> ApiClient:
    """A client for the cluster API with Larder's own credentials, read afresh each time
    (projected tokens rotate). In-cluster config unless LARDER_KUBERNETES_API_URL is set."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if settings.LARDER_KUBERNETES_API_URL:
        cfg.host = settings.LARDER_KUBERNETES_API_URL.rstrip("/")
    else:
        config.load_incluster_config(client_configuration=cfg)
    if settings.LARDER_KUBERNETES_CA_FILE:
        cfg.ssl_ca_cert = settings.LARDER_KUBERNETES_CA_FILE
    if settings.LARDER_KUBERNETES_TOKEN_FILE:
        cfg.api_key = {"BearerToken": _read(settings.LARDER_KUBERNETES_TOKEN_FILE)}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        cfg.refresh_api_key_hook = None
    cfg.retries = API_RETRIES
    return client.ApiClient(cfg)


def _bound_roles(bindings: list[Any], matches: Callable[[Any], bool]) -> set[str]:
    """The Roles (`roleRef.name`, as Feast) of the bindings with a subject that `matches`."""
    return {b.role_ref.name for b in bindings if any(matches(s) for s in b.subjects or [])}


def review(token: str) -> KubernetesAuth | None:
    """Ask the cluster who `token` is and which roles it holds; None if not authenticated.

    Who it is comes from the TokenReview only, never from the token's unverified claims.
    Raises ClusterUnavailable when any call fails."""
    from kubernetes import client

    timeout = API_TIMEOUT_SECONDS
    try:
        with api_client() as api:
            body = client.V1TokenReview(
                api_version="authentication.k8s.io/v1", kind="TokenReview", spec=client.V1TokenReviewSpec(token=token)
            )
            status = client.AuthenticationV1Api(api).create_token_review(body, _request_timeout=timeout).status
            if not status or not status.authenticated or not status.user or not status.user.username:
                logger.info("TokenReview did not authenticate the token: %s", getattr(status, "error", None))
                return None
            name, groups = status.user.username, frozenset(status.user.groups or [])
            rbac = client.RbacAuthorizationV1Api(api)
            bindings = rbac.list_namespaced_role_binding(settings.LARDER_KUBERNETES_NAMESPACE, _request_timeout=timeout)
            parts = name.split(":")
            if name.startswith(SA_PREFIX) and len(parts) == 4:
                ns, sa = parts[2], parts[3]
                roles = _bound_roles(
                    bindings.items, lambda s: s.kind == "ServiceAccount" and s.name == sa and s.namespace == ns
                )
                return KubernetesAuth(f"{ns}:{sa}", f"k8s:{ns}:{sa}", frozenset(roles), groups, namespace=ns)

            def names_user(s: Any) -> bool:
                return (s.kind == "User" and s.name == name) or (s.kind == "Group" and s.name in groups)

            cluster_bindings = rbac.list_cluster_role_binding(_request_timeout=timeout)
            roles = _bound_roles(bindings.items, names_user) | _bound_roles(cluster_bindings.items, names_user)
            return KubernetesAuth(name, f"k8s-user:{name}", frozenset(roles), groups)
    except Exception as exc:  # fail closed: any error reaching or reading the cluster is a 401
        # The message may quote the API's answer; it must not carry the caller's token into the log.
        raise ClusterUnavailable(f"{type(exc).__name__}: {exc}".replace(token, "<token>")) from exc


# -- the cache of positive reviews -----------------------------------------------------


class ReviewCache:
    """Positive reviews by token hash, each kept until min(TTL, the token's `exp`); LRU-bounded.

    `get_or_review` runs one review per token at a time, so a burst of calls with a new
    token waits for a single TokenReview instead of sending one each."""

    def __init__(self, max_entries: int = MAX_CACHED_REVIEWS):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, KubernetesAuth]] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _get(self, key: str) -> KubernetesAuth | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def _put(self, key: str, auth: KubernetesAuth, seconds: float) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + seconds, auth)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get_or_review(self, token: str, claims: dict[str, Any]) -> KubernetesAuth | None:
        ttl = float(settings.LARDER_KUBERNETES_CACHE_SECONDS)
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            ttl = min(ttl, exp - time.time())
        if ttl <= 0:
            return review(token)
        key = hashlib.sha256(token.encode()).hexdigest()
        if (hit := self._get(key)) is not None:
            return hit
        with self._lock:
            flight = self._inflight.setdefault(key, threading.Lock())
        with flight:
            if (hit := self._get(key)) is not None:
                return hit
            try:
                auth = review(token)
            finally:
                with self._lock:
                    self._inflight.pop(key, None)
            if auth is not None:
                self._put(key, auth, ttl)
            return auth


cache = ReviewCache()


@receiver(setting_changed)
def _forget_reviews(setting: str, **kwargs: Any) -> None:
    """A cached review belongs to one cluster and namespace: drop them when those change."""
    if setting.startswith("LARDER_KUBERNETES_") or setting == "LARDER_AUTH_KUBERNETES":
        cache.clear()


# -- the verifier ----------------------------------------------------------------------


def user_for(auth: KubernetesAuth) -> AbstractBaseUser:
    """The Django user standing for a reviewed identity: created on first sight with an
    unusable password; never a staff or superuser account, never an inactive one."""
    user_model = get_user_model()
    username = auth.django_username
    if len(username) > USERNAME_MAX:  # names up to 253 characters are legal in Kubernetes
        username = username[:100] + "~" + hashlib.sha256(username.encode()).hexdigest()[:32]
    user, created = user_model.objects.get_or_create(username=username, defaults={"is_staff": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if not user.is_active or user.is_staff or user.is_superuser:
        logger.warning("Kubernetes identity %s maps to an inactive or privileged account; refused", username)
        raise AuthenticationFailed(INVALID)
    return user


def verify(token: str, request: Any) -> tuple[AbstractBaseUser, KubernetesAuth] | None:
    """Bearer verifier (see access.identity.authentication): claims Kubernetes
    service-account JWTs when LARDER_AUTH_KUBERNETES is on, and lets others pass (None)."""
    if not settings.LARDER_AUTH_KUBERNETES:
        return None
    claims = unverified_claims(token)
    if claims is None or not is_kubernetes_token(claims):
        return None
    try:
        auth = cache.get_or_review(token, claims)
    except ClusterUnavailable as exc:
        logger.error("Kubernetes TokenReview failed, refusing the token: %s", exc)
        raise AuthenticationFailed(INVALID) from exc
    if auth is None:
        raise AuthenticationFailed(INVALID)
    user = user_for(auth)
    sync_groups(user, Identity(username=user.get_username(), roles=auth.roles, groups=auth.groups))
    return user, auth


def _cache_seconds() -> float:
    """RoleBinding changes must show after LARDER_KUBERNETES_CACHE_SECONDS, not later:
    access.identity.bearer_cache keeps a verified token no longer than that."""
    return settings.LARDER_KUBERNETES_CACHE_SECONDS


verify.cache_seconds = _cache_seconds  # type: ignore[attr-defined]
