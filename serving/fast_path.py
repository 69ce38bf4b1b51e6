"""POST /get-online-features answered ahead of Django, for the model server's hot loop.

Why: a one-entity request spends about 0.1 ms on its own work (one version query,
one online-store read, the JSON) and several times that in Django's handler, ten
middlewares and DRF, which are there for sessions, CSRF, templates and content
negotiation this request does not use (docs/benchmarks.md, "Online serving").

This WSGI wrapper answers a request itself only when all of these hold, and otherwise
hands it to Django unchanged (the body is replayed):

- exactly `POST /get-online-features` with a Content-Length, to a host ALLOWED_HOSTS
  accepts, over https when SECURE_SSL_REDIRECT asks for it;
- an `Authorization: Bearer` token this process has verified before under the current
  access epoch (access.identity.bearer_cache; a first use goes through DRF, which
  verifies and remembers it);
- the gate allows it: READ_ONLINE through the same plan (serving.features.plan) and
  the same predicate (access.policy.permits) over the project's permissions, cached
  per project version and access epoch;
- nothing raises.

So every denial, every 4xx and every error is the DRF view's own answer; the fast path
only gives 200s, the same bytes the view gives (tests/unit/test_fast_path.py).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from rest_framework.exceptions import AuthenticationFailed

from access.actions import Action
from access.identity import bearer_cache
from access.identity.authentication import token_from_header
from access.policy import permits
from serving import features, registry_cache
from serving.api.online import parse_request
from serving.errors import ServingError
from serving.online import get_online_store

log = logging.getLogger(__name__)

PATH = "/get-online-features"
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Decline(Exception):
    """Not for the fast path: Django answers."""


def _security_headers() -> list[tuple[str, str]]:
    """What Django's SecurityMiddleware and XFrameOptionsMiddleware add to a JSON answer."""
    headers = [("Content-Type", "application/json"), ("Allow", "POST")]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY")))
    return headers


def _hsts_header() -> list[tuple[str, str]]:
    """SecurityMiddleware's Strict-Transport-Security, for https answers."""
    if not settings.SECURE_HSTS_SECONDS:
        return []
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return [("Strict-Transport-Security", value)]


@dataclass(frozen=True)
class _Config:
    """The settings the fast path reads, read once (settings lookups cost per request)."""

    allowed_hosts: tuple[str, ...]
    ssl_redirect: bool
    proxy_ssl_header: tuple[str, str] | None
    forwarded_host: bool
    upload_limit: int | None
    serving_project: str

    @classmethod
    def from_settings(cls) -> _Config:
        return cls(
            allowed_hosts=tuple(settings.ALLOWED_HOSTS),
            ssl_redirect=settings.SECURE_SSL_REDIRECT,
            proxy_ssl_header=getattr(settings, "SECURE_PROXY_SSL_HEADER", None),
            forwarded_host=settings.USE_X_FORWARDED_HOST,
            upload_limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
            serving_project=settings.LARDER_SERVING_PROJECT,
        )

    def is_secure(self, environ: dict[str, Any]) -> bool:
        if self.proxy_ssl_header:
            return environ.get(self.proxy_ssl_header[0]) == self.proxy_ssl_header[1]
        return environ.get("wsgi.url_scheme") == "https"

    def host(self, environ: dict[str, Any]) -> str:
        """The host as HttpRequest.get_host reads it (before validating it)."""
        if self.forwarded_host and "HTTP_X_FORWARDED_HOST" in environ:
            return environ["HTTP_X_FORWARDED_HOST"]
        return environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")


def _bearer(environ: dict[str, Any]) -> str:
    """The request's bearer token, read as DRF's authentication reads it; anything else
    (no token, another scheme, a malformed header) is answered by Django."""
    try:
        token = token_from_header(environ.get("HTTP_AUTHORIZATION", "").encode("iso-8859-1"))
    except (AuthenticationFailed, UnicodeEncodeError):
        raise _Decline from None
    if token is None:
        raise _Decline
    return token


class FastOnlinePath:
    """WSGI middleware: the fast answer for /get-online-features (module docstring)."""

    MEMO_SIZE = 1024

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.config = _Config.from_settings()
        self.headers = _security_headers()
        self.hsts = _hsts_header()
        # Decisions already taken, so that a steady caller costs dict lookups: host header
        # -> valid; (object, principal) -> (the permissions decided on, allowed).
        self._hosts: dict[str, bool] = {}
        self._decisions: dict[tuple[Any, Any], tuple[Any, bool]] = {}

    def _host_allowed(self, host: str) -> bool:
        known = self._hosts.get(host)
        if known is None:
            domain, _ = split_domain_port(host)
            known = bool(domain) and validate_host(domain, self.config.allowed_hosts)
            if len(self._hosts) >= self.MEMO_SIZE:  # hosts come from clients: stay bounded
                self._hosts.clear()
            self._hosts[host] = known
        return known

    def _allowed(self, target: Any, principal: Any, rules: Any) -> bool:
        key = (target, principal)
        known = self._decisions.get(key)
        if known is not None and known[0] is rules:
            return known[1]
        allowed = permits(principal, rules, Action.READ_ONLINE, target)
        if len(self._decisions) >= self.MEMO_SIZE:
            self._decisions.clear()
        self._decisions[key] = (rules, allowed)
        return allowed

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self.app(environ, start_response)
        limit = self.config.upload_limit
        if length <= 0 or (limit is not None and length > limit):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        try:
            payload, secure = self.answer(environ, body)
        except (_Decline, ServingError):
            payload = None
        except Exception:  # the DRF view will meet the same problem and report it properly
            log.warning("fast path: handing %s to Django after an error", PATH, exc_info=True)
            payload = None
        if payload is None:
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            return self.app(environ, start_response)
        headers = [*self.headers, *(self.hsts if secure else ()), ("Content-Length", str(len(payload)))]
        start_response("200 OK", headers)
        return [payload]

    def answer(self, environ: dict[str, Any], body: bytes) -> tuple[bytes, bool]:
        """The response body of an allowed, valid request (and whether it came over
        https); _Decline or an exception for anything else."""
        config = self.config
        secure = config.is_secure(environ)
        if config.ssl_redirect and not secure:
            raise _Decline
        if not self._host_allowed(config.host(environ)):
            raise _Decline
        token = _bearer(environ)
        request = orjson.loads(body)
        if not isinstance(request, dict):
            raise _Decline
        refs, service, full_names, entities = parse_request(request)
        name = request.get("project")
        if not name and environ.get("QUERY_STRING"):
            name = (parse_qs(environ["QUERY_STRING"]).get("project") or [""])[-1]
        name = name or config.serving_project
        if name is not None and not isinstance(name, str):
            raise _Decline
        project, epoch = registry_cache.locate(name or None)
        if project is None:
            raise _Decline
        identity = bearer_cache.lookup(token, epoch)
        if identity is None:
            raise _Decline
        snap = registry_cache.snapshot(project)
        rules = registry_cache.permission_rules(project, epoch)
        principal = identity.principal

        def gate(target: registry_cache.GateTarget, not_found: Any) -> None:
            if not self._allowed(target, principal, rules):
                raise _Decline

        plan = features.plan(snap, refs, service, full_names, gate)
        result = features.retrieve(snap, plan, entities, get_online_store(), datetime.now(UTC))
        return orjson.dumps(result), secure


def wrap(app: WSGIApp) -> WSGIApp:
    """`app` behind the fast path when LARDER_SERVING_FAST_PATH is on."""
    return FastOnlinePath(app) if settings.LARDER_SERVING_FAST_PATH else app
