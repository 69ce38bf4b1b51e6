"""OIDC JWT bearer tokens on the API, verified against a JWKS served over real HTTP.

Keys are generated here (RSA and EC); a small identity provider on 127.0.0.1 serves a
discovery document and the JWKS and counts the fetches. Each bad token (alg none,
expired, not yet valid, wrong issuer or audience, another key, tampered, unknown kid,
HS256 with the public key, no exp...) must get the same 401."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth.models import User
from django.test import Client
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from access.identity.jwt_tokens import jwks_cache
from access.models import Permission
from catalog.models import DataSource, Project
from tests.unit.registry_data import make_view

pytestmark = pytest.mark.django_db

INVALID = {"status_code": 401, "detail": "Invalid or expired access token", "error_type": "AuthenticationError"}
MISSING = {"status_code": 401, "detail": "Missing authentication token", "error_type": "AuthenticationError"}
REALM = "/realms/ml"
VIEWS_URL = "/api/v1/feature_views?project=p"


class IdentityProvider:
    """What the fake provider serves, and how often each path was fetched."""

    def __init__(self) -> None:
        self.jwks: list[dict[str, Any]] = []
        self.hits: Counter[str] = Counter()
        self.base = ""

    @property
    def issuer(self) -> str:
        return self.base + REALM

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/protocol/openid-connect/certs"

    @property
    def jwks_fetches(self) -> int:
        return self.hits[REALM + "/protocol/openid-connect/certs"]

    @property
    def discovery_fetches(self) -> int:
        return self.hits[REALM + "/.well-known/openid-configuration"]


class Handler(BaseHTTPRequestHandler):
    idp: IdentityProvider

    def do_GET(self) -> None:
        idp = self.server.idp
        idp.hits[self.path] += 1
        if self.path == REALM + "/.well-known/openid-configuration":
            body: dict[str, Any] = {"issuer": idp.issuer, "jwks_uri": idp.jwks_url}
        elif self.path == REALM + "/protocol/openid-connect/certs":
            body = {"keys": idp.jwks}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "other_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def idp_server() -> Iterator[IdentityProvider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.idp = IdentityProvider()
    server.idp.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.idp
    server.shutdown()
    server.server_close()


@pytest.fixture
def idp(idp_server: IdentityProvider, keys, settings) -> IdentityProvider:
    """The provider with the RSA and EC keys published, configured by discovery, fresh caches."""
    idp_server.jwks = [public_jwk(keys["rsa"], "rsa-1"), public_jwk(keys["ec"], "ec-1")]
    idp_server.hits.clear()
    jwks_cache.clear()
    settings.LARDER_OIDC_DISCOVERY_URL = idp_server.discovery_url
    settings.LARDER_OIDC_JWKS_URL = ""
    settings.LARDER_OIDC_ISSUER = ""
    settings.LARDER_OIDC_AUDIENCE = []
    settings.LARDER_OIDC_CLIENT_ID = "larder-portal"
    yield idp_server
    jwks_cache.clear()


@pytest.fixture
def registry() -> Project:
    """Project p: two public views a reader may see, one private view only admins see."""
    project = Project.objects.create(name="p")
    source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet", timestamp_field="ts")
    for name in ("public_a", "public_b", "private_x"):
        make_view(project, name, source)
    Permission.objects.create(
        project=project, name="readers", types=["feature_view"], name_patterns=["public_.*"], actions=["DESCRIBE"],
        roles=["reader"],
    )  # fmt: skip
    Permission.objects.create(
        project=project, name="admins", types=["feature_view"], actions=["DESCRIBE"], roles=["view-admin"]
    )
    return project


def claims_for(idp: IdentityProvider, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": idp.issuer,
        "sub": "f7c1a2b3",
        "preferred_username": "alice",
        "email": "alice@example.com",
        "resource_access": {"larder-portal": {"roles": ["reader"]}},
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: Any, alg: str = "RS256", kid: str | None = "rsa-1") -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())


def call(token: str | None, url: str = VIEWS_URL):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return Client().get(url, **headers)


def view_names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(item["spec"]["name"] for item in response.json()["featureViews"])


# -- valid tokens ----------------------------------------------------------------------------


def test_rs256_token_sees_what_its_roles_allow(idp, keys, registry):
    response = call(sign(claims_for(idp), keys["rsa"]))
    assert view_names(response) == ["public_a", "public_b"]
    user = User.objects.get(username="alice")
    assert not user.has_usable_password()  # came from the provider: no local password
    assert not user.is_staff and not user.is_superuser
    assert user.email == "alice@example.com"
    assert set(user.groups.values_list("name", flat=True)) == {"reader"}


def test_es256_token(idp, keys, registry):
    token = sign(claims_for(idp, resource_access=None, roles=["view-admin"]), keys["ec"], alg="ES256", kid="ec-1")
    assert view_names(call(token)) == ["private_x", "public_a", "public_b"]


def test_leeway_accepts_a_token_just_expired(idp, keys, registry):
    now = int(time.time())
    token = sign(claims_for(idp, exp=now - 5, iat=now - 300, nbf=now - 300), keys["rsa"])
    assert call(token).status_code == 200


def test_roles_follow_each_token(idp, keys, registry):
    """The same user with three tokens: the groups are synced to each token's roles."""
    reader = sign(claims_for(idp), keys["rsa"])
    admin = sign(claims_for(idp, resource_access=None, roles=["view-admin"], groups=["ml-team"]), keys["rsa"])
    nobody = sign(claims_for(idp, resource_access=None), keys["rsa"])
    assert view_names(call(reader)) == ["public_a", "public_b"]
    assert view_names(call(admin)) == ["private_x", "public_a", "public_b"]
    user = User.objects.get(username="alice")
    assert set(user.groups.values_list("name", flat=True)) == {"view-admin", "ml-team"}
    assert view_names(call(nobody)) == []
    assert not user.groups.exists()
    assert view_names(call(reader)) == ["public_a", "public_b"]
    assert User.objects.filter(username="alice").count() == 1


def test_existing_provider_user_is_reused_and_not_promoted(idp, keys, registry, make_user):
    existing = make_user("alice", roles=("stale-role",))
    existing.set_unusable_password()  # an account the provider made (no local password)
    existing.save()
    assert view_names(call(sign(claims_for(idp), keys["rsa"]))) == ["public_a", "public_b"]
    existing.refresh_from_db()
    assert not existing.is_staff and not existing.is_superuser
    assert set(existing.groups.values_list("name", flat=True)) == {"reader"}


def test_inactive_user_is_refused(idp, keys, registry, make_user):
    make_user("alice", is_active=False)
    response = call(sign(claims_for(idp), keys["rsa"]))
    assert (response.status_code, response.json()) == (401, INVALID)


def test_audience_when_configured(idp, keys, registry, settings):
    settings.LARDER_OIDC_AUDIENCE = ["larder-api"]
    assert call(sign(claims_for(idp, aud="larder-api"), keys["rsa"])).status_code == 200
    assert call(sign(claims_for(idp, aud=["account", "larder-api"]), keys["rsa"])).status_code == 200
    for bad in ({"aud": "account"}, {"aud": None}):
        response = call(sign(claims_for(idp, **bad), keys["rsa"]))
        assert (response.status_code, response.json()) == (401, INVALID), bad


def test_audience_is_not_checked_when_not_configured(idp, keys, registry):
    assert call(sign(claims_for(idp, aud="anything"), keys["rsa"])).status_code == 200


def test_explicit_jwks_url_and_issuer_without_discovery(idp, keys, registry, settings):
    settings.LARDER_OIDC_DISCOVERY_URL = ""
    settings.LARDER_OIDC_JWKS_URL = idp.jwks_url
    settings.LARDER_OIDC_ISSUER = idp.issuer
    assert call(sign(claims_for(idp), keys["rsa"])).status_code == 200
    assert call(sign(claims_for(idp, iss="https://elsewhere"), keys["rsa"])).status_code == 401
    assert idp.discovery_fetches == 0


def test_no_kid_uses_the_only_key(idp, keys, registry):
    idp.jwks = [public_jwk(keys["rsa"], "rsa-1")]
    assert call(sign(claims_for(idp), keys["rsa"], kid=None)).status_code == 200


def test_no_kid_is_refused_when_the_provider_has_several_keys(idp, keys, registry):
    assert call(sign(claims_for(idp), keys["rsa"], kid=None)).status_code == 401


# -- bad tokens: all the same 401 ------------------------------------------------------------


def bad_tokens(idp: IdentityProvider, keys: dict[str, Any]) -> dict[str, str]:
    now = int(time.time())
    good = sign(claims_for(idp), keys["rsa"])
    header, _, signature = good.split(".")
    tampered_claims = claims_for(idp, resource_access=None, roles=["view-admin"])
    pem = (
        keys["rsa"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims_for(idp))
    hs_signature = b64url(hmac.new(pem, hs_input.encode(), hashlib.sha256).digest())
    return {
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims_for(idp)) + ".",
        "alg None": unsigned({"alg": "None", "kid": "rsa-1"}, claims_for(idp)) + ".",
        "expired": sign(claims_for(idp, exp=now - 60, iat=now - 400, nbf=now - 400), keys["rsa"]),
        "not yet valid": sign(claims_for(idp, nbf=now + 120), keys["rsa"]),
        "issued in the future": sign(claims_for(idp, iat=now + 120), keys["rsa"]),
        "wrong issuer": sign(claims_for(idp, iss="https://evil.example.com/realms/ml"), keys["rsa"]),
        "no issuer": sign(claims_for(idp, iss=None), keys["rsa"]),
        "another key, same kid": sign(claims_for(idp), keys["other_rsa"]),
        "tampered payload": f"{header}.{b64url(json.dumps(tampered_claims).encode())}.{signature}",
        "truncated signature": good[:-6],
        "HS256 with the public key": f"{hs_input}.{hs_signature}",
        "RS512 (not allowed)": sign(claims_for(idp), keys["rsa"], alg="RS512"),
        "ES256 against the RSA key's kid": sign(claims_for(idp), keys["ec"], alg="ES256", kid="rsa-1"),
        "missing exp": sign(claims_for(idp, exp=None), keys["rsa"]),
        "no username claim": sign(claims_for(idp, sub=None, preferred_username=None), keys["rsa"]),
        "garbage JWT shape": "abc.def.ghi",
        "opaque garbage": "not-a-token",
    }


BAD_CASES = [
    "alg none",
    "alg None",
    "expired",
    "not yet valid",
    "issued in the future",
    "wrong issuer",
    "no issuer",
    "another key, same kid",
    "tampered payload",
    "truncated signature",
    "HS256 with the public key",
    "RS512 (not allowed)",
    "ES256 against the RSA key's kid",
    "missing exp",
    "no username claim",
    "garbage JWT shape",
    "opaque garbage",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_token_is_401(idp, keys, registry, case):
    token = bad_tokens(idp, keys)[case]
    response = call(token)
    assert (response.status_code, response.json()) == (401, INVALID)
    assert response["WWW-Authenticate"] == 'Bearer realm="larder"'
    assert not User.objects.filter(username="alice").exists()  # refused before any user is made


def test_bad_cases_are_all_listed(idp, keys):
    assert sorted(bad_tokens(idp, keys)) == sorted(BAD_CASES)


def test_missing_token_is_401(idp, registry):
    response = call(None)
    assert (response.status_code, response.json()) == (401, MISSING)
    response = Client().get(VIEWS_URL, HTTP_AUTHORIZATION="Bearer ")
    assert (response.status_code, response.json()) == (401, INVALID)


def test_scheme_is_case_insensitive(idp, keys, registry):
    response = Client().get(VIEWS_URL, HTTP_AUTHORIZATION="bEaReR " + sign(claims_for(idp), keys["rsa"]))
    assert view_names(response) == ["public_a", "public_b"]


# -- the JWKS: cached, refreshed once on an unknown kid ----------------------------------------


def test_jwks_is_cached(idp, keys, registry):
    for _ in range(5):
        assert call(sign(claims_for(idp), keys["rsa"])).status_code == 200
    assert call(sign(claims_for(idp), keys["ec"], alg="ES256", kid="ec-1")).status_code == 200
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)


def test_jwks_is_fetched_again_after_the_cache_period(idp, keys, registry, settings):
    settings.LARDER_OIDC_JWKS_CACHE_SECONDS = 0
    settings.LARDER_BEARER_CACHE_SECONDS = 0  # verify every call, not from the bearer cache
    for _ in range(3):
        assert call(sign(claims_for(idp), keys["rsa"])).status_code == 200
    assert idp.jwks_fetches == 3


def test_unknown_kid_refreshes_once_then_is_rate_limited(idp, keys, registry):
    assert call(sign(claims_for(idp), keys["rsa"])).status_code == 200
    assert idp.jwks_fetches == 1
    response = call(sign(claims_for(idp), keys["other_rsa"], kid="made-up-1"))
    assert (response.status_code, response.json()) == (401, INVALID)
    assert idp.jwks_fetches == 2  # refreshed once in case the provider rotated its keys
    for n in range(2, 6):  # a flood of made-up kids: no more fetches
        assert call(sign(claims_for(idp), keys["other_rsa"], kid=f"made-up-{n}")).status_code == 401
    assert idp.jwks_fetches == 2
    assert call(sign(claims_for(idp), keys["rsa"])).status_code == 200  # known keys still work


def test_rotated_key_is_picked_up_on_its_first_token(idp, keys, registry):
    assert call(sign(claims_for(idp), keys["rsa"])).status_code == 200
    idp.jwks = [*idp.jwks, public_jwk(keys["other_rsa"], "rsa-2")]  # the provider rotates
    assert call(sign(claims_for(idp), keys["other_rsa"], kid="rsa-2")).status_code == 200
    assert idp.jwks_fetches == 2


def test_key_declaring_another_alg_is_not_used(idp, keys, registry):
    idp.jwks = [{**public_jwk(keys["rsa"], "rsa-1"), "alg": "RS512"}]
    assert call(sign(claims_for(idp), keys["rsa"])).status_code == 401


def test_encryption_keys_are_not_used_for_signatures(idp, keys, registry):
    idp.jwks = [{**public_jwk(keys["rsa"], "rsa-1"), "use": "enc"}]
    assert call(sign(claims_for(idp), keys["rsa"])).status_code == 401


# -- configuration -----------------------------------------------------------------------------


def test_without_a_provider_jwts_are_not_accepted(idp, keys, registry, settings):
    settings.LARDER_OIDC_DISCOVERY_URL = ""
    response = call(sign(claims_for(idp), keys["rsa"]))
    assert (response.status_code, response.json()) == (401, INVALID)
    assert sum(idp.hits.values()) == 0


def test_hs256_in_the_setting_is_ignored(idp, keys, registry, settings):
    settings.LARDER_OIDC_ALGORITHMS = ["HS256", "none", "RS256"]
    assert call(bad_tokens(idp, keys)["HS256 with the public key"]).status_code == 401
    assert call(bad_tokens(idp, keys)["alg none"]).status_code == 401
    assert call(sign(claims_for(idp), keys["rsa"])).status_code == 200


def test_unreachable_provider_is_503_not_a_crash(idp, keys, registry, settings):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    settings.LARDER_OIDC_DISCOVERY_URL = f"http://127.0.0.1:{port}/.well-known/openid-configuration"
    response = call(sign(claims_for(idp), keys["rsa"]))
    assert response.status_code == 503
    assert response.json()["error_type"] == "IdentityProviderUnavailable"


def test_bearer_jwt_writes_need_no_csrf(idp, keys, registry):
    Permission.objects.create(project=registry, name="creators", types=["entity"], actions=["CREATE"], roles=["reader"])
    client = Client(enforce_csrf_checks=True)
    body = {"project": "p", "name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"}
    response = client.post(
        "/api/v1/entities",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sign(claims_for(idp), keys['rsa'])}",
    )
    assert response.status_code == 201, response.content


# -- no takeover of local accounts --------------------------------------------------------


def test_jwt_naming_a_local_superuser_is_refused(idp, keys, registry):
    User.objects.create_superuser("alice", password="local-secret")
    response = call(sign(claims_for(idp), keys["rsa"]))
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or expired access token"


def test_jwt_for_an_account_the_provider_created_still_works(idp, keys, registry):
    first = call(sign(claims_for(idp), keys["rsa"]))
    assert view_names(first) == ["public_a", "public_b"]
    User.objects.filter(username="alice").update(is_staff=True)  # an admin promoted them
    assert view_names(call(sign(claims_for(idp), keys["rsa"]))) == ["public_a", "public_b"]
