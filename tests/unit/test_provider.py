"""The built-in OIDC provider and the portal's sign-in pages, driven with Django's test client.

The provider side runs end to end here (discovery, JWKS, authorize with PKCE, the
provider's own sign-in page, the token exchange, the ID token verified against the
JWKS, userinfo). The portal's token exchange is a server-to-server HTTP call, which the
test client cannot serve: tests/browser/test_oidc_login.py runs it against a live server.
"""

import base64
import hashlib
import io
import secrets
import stat
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Group, User
from django.core.exceptions import SuspiciousOperation
from django.core.management import CommandError, call_command
from django.test import Client
from oauth2_provider.models import Application

from access.identity import signing_key
from access.identity.idp import IDP_SESSION_KEY
from access.identity.oidc_backend import LarderOIDCBackend
from access.identity.urls import identity_urlpatterns
from access.management.commands.setup_identity import ensure_portal_client

pytestmark = pytest.mark.django_db

PUBLIC_URL = "http://127.0.0.1:8000"
CLIENT_ID = "larder-portal"
CALLBACK = f"{PUBLIC_URL}/oidc/callback/"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def form_post(client: Client, url: str, data: dict, **headers):
    return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded", **headers)


@pytest.fixture
def provider(settings, tmp_path):
    """The portal's client registered as setup_identity does it; returns its secret."""
    settings.LARDER_PUBLIC_URL = PUBLIC_URL
    settings.LARDER_OIDC_CLIENT_SECRET = ""
    settings.LARDER_OIDC_CLIENT_SECRET_FILE = tmp_path / "oidc-client-secret"
    settings.LARDER_OIDC_PROVIDER_NAME = ""
    ensure_portal_client(PUBLIC_URL)
    return settings.LARDER_OIDC_CLIENT_SECRET_FILE.read_text().strip()


@pytest.fixture
def scientist(make_user):
    user = make_user("scientist", roles=("data-scientist",), email="sci@example.com")
    Group.objects.create(name="unrelated")
    return user


def authorize_query(challenge: str, **extra) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return "/o/authorize/?" + urlencode(params)


def sign_in_and_get_code(client: Client, challenge: str, username: str = "scientist") -> str:
    """authorize -> the provider's sign-in page -> authorize again -> redirect with a code."""
    response = client.get(authorize_query(challenge))
    assert response.status_code == 302
    login_url = response["Location"]
    assert login_url.startswith("/idp/login/?next=")
    page = client.get(login_url)
    assert page.status_code == 200 and b"Sign in to continue to Larder" in page.content
    next_url = parse_qs(urlsplit(login_url).query)["next"][0]
    response = client.post("/idp/login/", {"username": username, "password": f"pw-{username}", "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url
    response = client.get(next_url)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    return query["code"][0]


def exchange(client: Client, code: str, verifier: str, secret: str):
    return form_post(
        client,
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "code_verifier": verifier,
        },
    )


# -- discovery and keys ---------------------------------------------------------------------


def test_discovery_document_names_the_endpoints_and_s256(client, provider):
    document = client.get("/o/.well-known/openid-configuration").json()
    assert document["issuer"] == f"{PUBLIC_URL}/o"
    assert document["authorization_endpoint"] == f"{PUBLIC_URL}/o/authorize/"
    assert document["token_endpoint"] == f"{PUBLIC_URL}/o/token/"
    assert document["userinfo_endpoint"] == f"{PUBLIC_URL}/o/userinfo/"
    assert document["jwks_uri"] == f"{PUBLIC_URL}/o/.well-known/jwks.json"
    assert document["end_session_endpoint"] == f"{PUBLIC_URL}/o/logout/"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in document["id_token_signing_alg_values_supported"]
    assert {"preferred_username", "roles", "groups", "resource_access"} <= set(document["claims_supported"])
    assert set(document["scopes_supported"]) == {"openid", "profile", "email", "api"}


def test_jwks_serves_the_public_half_of_the_signing_key(client, provider):
    keys = client.get("/o/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert "d" not in key and "p" not in key  # no private parts
    private = serialization.load_pem_private_key(signing_key.signing_key_pem().encode(), None)
    public_n = private.public_key().public_numbers().n
    assert int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=="), "big") == public_n


# -- the authorization-code flow with PKCE ---------------------------------------------------


def test_code_flow_with_pkce_gives_an_id_token_verified_by_the_jwks(client, provider, scientist):
    verifier, challenge = pkce_pair()
    code = sign_in_and_get_code(client, challenge)
    response = exchange(client, code, verifier, provider)
    assert response.status_code == 200, response.content
    tokens = response.json()
    assert set(tokens) >= {"access_token", "id_token", "refresh_token"}

    jwks = jwt.PyJWKSet.from_dict(client.get("/o/.well-known/jwks.json").json())
    header = jwt.get_unverified_header(tokens["id_token"])
    assert header["alg"] == "RS256"
    claims = jwt.decode(
        tokens["id_token"],
        jwks[header["kid"]].key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=f"{PUBLIC_URL}/o",
    )
    assert claims["preferred_username"] == "scientist"
    assert claims["roles"] == ["data-scientist"] and claims["groups"] == ["data-scientist"]
    assert claims["resource_access"] == {CLIENT_ID: {"roles": ["data-scientist"]}}
    assert claims["email"] == "sci@example.com"
    assert claims["nonce"] == "n0nce"
    assert claims["sub"] == str(scientist.pk)

    userinfo = client.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["preferred_username"] == "scientist" and userinfo["roles"] == ["data-scientist"]


def test_the_code_is_useless_without_the_right_verifier(client, provider, scientist):
    verifier, challenge = pkce_pair()
    code = sign_in_and_get_code(client, challenge)
    response = exchange(client, code, pkce_pair()[0], provider)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    response = exchange(client, code, verifier, "wrong-secret")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_pkce_is_required_and_plain_refused(client, provider, scientist):
    client.post("/idp/login/", {"username": "scientist", "password": "pw-scientist"})
    for query in (
        authorize_query("x", code_challenge="", code_challenge_method=""),
        authorize_query("a" * 43, code_challenge_method="plain"),
    ):
        response = client.get(query)
        assert response.status_code == 302
        assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["invalid_request"], response["Location"]


def test_signing_in_at_the_provider_is_not_signing_in_to_the_portal(client, provider, scientist):
    """The portal's session begins only at the OIDC callback (access.identity.idp)."""
    response = client.post("/idp/login/", {"username": "scientist", "password": "pw-scientist", "next": "/"})
    assert response.status_code == 302
    assert client.session[IDP_SESSION_KEY]["id"] == scientist.pk
    assert "_auth_user_id" not in client.session
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_provider_sign_in_rejects_a_wrong_password_and_unsafe_next(client, provider, scientist):
    response = client.post("/idp/login/", {"username": "scientist", "password": "nope"})
    assert response.status_code == 200 and b"correct username and password" in response.content
    assert IDP_SESSION_KEY not in client.session
    response = client.post(
        "/idp/login/", {"username": "scientist", "password": "pw-scientist", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_a_password_change_ends_the_provider_session(client, provider, scientist):
    client.post("/idp/login/", {"username": "scientist", "password": "pw-scientist"})
    scientist.set_password("changed")
    scientist.save()
    response = client.get(authorize_query(pkce_pair()[1]))
    assert response["Location"].startswith("/idp/login/")
    assert IDP_SESSION_KEY not in client.session


# -- the portal's sign-in page ----------------------------------------------------------------


def test_login_page_offers_larder_id_and_hides_the_local_form_by_default(client, provider, settings):
    settings.LARDER_LOCAL_LOGIN = False
    page = client.get("/accounts/login/?next=/api/docs/").content.decode()
    assert "Sign in with Larder ID" in page
    assert 'href="/oidc/authenticate/?next=%2Fapi%2Fdocs%2F"' in page
    assert 'name="password"' not in page


def test_local_login_is_refused_when_disabled(client, provider, scientist, settings, make_user):
    settings.LARDER_LOCAL_LOGIN = False
    response = client.post("/accounts/login/", {"username": "scientist", "password": "pw-scientist"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302
    # the admin's login form is the same door: closed to anonymous callers by the
    # middleware, and refused to a signed-in one trying someone else's password
    response = client.post("/admin/login/", {"username": "scientist", "password": "pw-scientist"})
    assert response.status_code == 302 and "_auth_user_id" not in client.session
    make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(scientist)
    response = client.post("/admin/login/", {"username": "boss", "password": "pw-boss"})
    assert response.status_code == 403 and client.session["_auth_user_id"] == str(scientist.pk)


def test_local_login_works_when_enabled(client, provider, scientist, settings):
    settings.LARDER_LOCAL_LOGIN = True
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Larder ID" in page and 'name="password"' in page
    response = client.post("/accounts/login/", {"username": "scientist", "password": "pw-scientist"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_provider_name_is_configurable(client, provider, settings):
    settings.LARDER_OIDC_PROVIDER_NAME = "Keycloak"
    assert b"Sign in with Keycloak" in client.get("/accounts/login/").content


# -- the portal as OIDC client (its side that needs no second server) ------------------------


def test_authenticate_starts_the_code_flow_with_s256_pkce(client, provider):
    response = client.get("/oidc/authenticate/?next=/api/docs/")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/o/authorize/"  # the built-in provider, on the host the browser uses
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == "http://testserver/oidc/callback/"
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256"
    stored = client.session["oidc_states"][query["state"]]
    expected = base64.urlsafe_b64encode(hashlib.sha256(stored["code_verifier"].encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == expected.decode()
    assert stored["nonce"] == query["nonce"]
    assert client.session["oidc_login_next"] == "/api/docs/"


def test_callback_with_an_unreachable_token_endpoint_fails_cleanly(client, provider, settings):
    settings.LARDER_PUBLIC_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    response = client.get("/oidc/authenticate/")
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    response = client.get(f"/oidc/callback/?code=abc&state={state}")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?failed=1"
    assert "_auth_user_id" not in client.session
    assert b"did not succeed" in client.get(response["Location"]).content


@pytest.fixture
def foreign_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, public.decode()


def id_token(key, **claims) -> str:
    now = datetime.now(UTC)
    body = {
        "iss": f"{PUBLIC_URL}/o",
        "aud": CLIENT_ID,
        "sub": "42",
        "nonce": "n",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256")


def test_backend_checks_audience_issuer_and_nonce(provider, foreign_key):
    key, public = foreign_key
    backend = LarderOIDCBackend()
    backend.OIDC_RP_IDP_SIGN_KEY = public  # instead of fetching the JWKS over HTTP
    assert backend.verify_token(id_token(key), nonce="n")["sub"] == "42"
    assert backend.verify_token(id_token(key, aud=[CLIENT_ID, "other"], azp=CLIENT_ID), nonce="n")
    for bad in (
        {"aud": "someone-else"},
        {"aud": [CLIENT_ID, "other"], "azp": "other"},
        {"iss": "https://elsewhere.example/o"},
        {"nonce": "replayed"},
    ):
        with pytest.raises(SuspiciousOperation):
            backend.verify_token(id_token(key, **bad), nonce="n")
    with pytest.raises(jwt.ExpiredSignatureError):
        backend.verify_token(id_token(key, exp=datetime.now(UTC) - timedelta(minutes=1)), nonce="n")


def test_backend_creates_and_resyncs_users_from_claims(provider):
    backend = LarderOIDCBackend()
    claims = {
        "sub": "k-1",
        "preferred_username": "dana",
        "email": "dana@example.com",
        "resource_access": {CLIENT_ID: {"roles": ["ml-engineer"]}, "other-app": {"roles": ["ignored"]}},
        "roles": ["Reader"],
        "groups": ["team-a"],
    }
    assert backend.verify_claims(claims)
    assert not backend.filter_users_by_claims(claims).exists()
    user = backend.create_user(claims)
    assert not user.has_usable_password() and user.email == "dana@example.com"
    assert set(user.groups.values_list("name", flat=True)) == {"ml-engineer", "Reader", "team-a"}

    claims = {**claims, "resource_access": {}, "roles": ["reader"], "email": "d@example.com"}
    (found,) = backend.filter_users_by_claims(claims)
    backend.update_user(found, claims)
    found.refresh_from_db()
    assert set(found.groups.values_list("name", flat=True)) == {"reader", "team-a"}  # case-sensitive
    assert found.email == "d@example.com"
    with pytest.raises(SuspiciousOperation):
        backend.verify_claims({"email": "x@example.com"})  # no username claim at all


def test_backend_ignores_password_checks(provider, scientist):
    assert LarderOIDCBackend().authenticate(None, username="scientist", password="pw-scientist") is None
    assert LarderOIDCBackend().get_user(scientist.pk) == scientist
    scientist.is_active = False
    scientist.save()
    assert LarderOIDCBackend().get_user(scientist.pk) is None


# -- signing out ------------------------------------------------------------------------------


def test_logout_sends_the_browser_to_the_providers_end_session(client, provider, scientist):
    client.force_login(scientist, backend="access.identity.oidc_backend.LarderOIDCBackend")
    session = client.session
    session["oidc_id_token"] = "the.id.token"
    session.save()
    response = client.post("/accounts/logout/")
    location = urlsplit(response["Location"])
    assert location.path == "/o/logout/"
    assert parse_qs(location.query) == {
        "id_token_hint": ["the.id.token"],
        "post_logout_redirect_uri": ["http://testserver/accounts/login/"],
        "client_id": [CLIENT_ID],
    }
    assert "_auth_user_id" not in client.session


def test_logout_of_a_local_session_goes_to_the_login_page(client, scientist):
    client.force_login(scientist)
    assert client.get("/accounts/logout/").status_code == 405  # POST only
    response = client.post("/accounts/logout/")
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_provider_logout_with_a_valid_hint_ends_the_session(client, provider, scientist):
    verifier, challenge = pkce_pair()
    tokens = exchange(client, sign_in_and_get_code(client, challenge), verifier, provider).json()
    client.force_login(scientist)
    query = urlencode(
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": f"{PUBLIC_URL}/accounts/login/"}
    )
    response = client.get(f"/o/logout/?{query}")
    assert response.status_code == 302 and response["Location"] == f"{PUBLIC_URL}/accounts/login/"
    assert "_auth_user_id" not in client.session and IDP_SESSION_KEY not in client.session


def test_provider_logout_without_a_hint_asks_first(client, provider, scientist):
    """A bare link to /o/logout/ cannot sign anybody out behind their back."""
    client.force_login(scientist)
    response = client.get("/o/logout/")
    assert response.status_code == 200
    assert client.session["_auth_user_id"] == str(scientist.pk)


# -- settings, key, setup_identity -------------------------------------------------------------


def test_without_the_builtin_provider_its_routes_are_not_mounted(settings):
    settings.LARDER_BUILTIN_IDP = False
    routes = {str(p.pattern) for p in identity_urlpatterns()}
    assert routes == {"accounts/login/", "accounts/logout/", "admin/login/", "oidc/"}
    settings.LARDER_BUILTIN_IDP = True
    assert {"o/", "idp/login/"} <= {str(p.pattern) for p in identity_urlpatterns()}


def test_signing_key_is_made_once_with_mode_0600(settings, tmp_path):
    path = tmp_path / "var" / "key.pem"
    settings.LARDER_OIDC_SIGNING_KEY = ""
    settings.LARDER_OIDC_SIGNING_KEY_FILE = path
    pem = signing_key.signing_key_pem()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key.ensure_key_file(path) == (pem, False)
    settings.LARDER_OIDC_SIGNING_KEY = signing_key.new_private_key_pem()  # production: the PEM from the env
    assert signing_key.signing_key_pem() == settings.LARDER_OIDC_SIGNING_KEY.strip() + "\n"


def test_setup_identity_is_idempotent(settings, tmp_path, make_user):
    settings.LARDER_PUBLIC_URL = "http://127.0.0.1:8000"
    settings.LARDER_OIDC_CLIENT_SECRET = ""
    settings.LARDER_OIDC_CLIENT_SECRET_FILE = tmp_path / "secret"
    settings.LARDER_OIDC_SIGNING_KEY_FILE = tmp_path / "key.pem"
    make_user("model-server", roles=("model-server",))
    credentials = tmp_path / "demo-credentials.txt"

    out = io.StringIO()
    call_command("setup_identity", demo=True, credentials_file=credentials, stdout=out)
    first = out.getvalue()
    assert "portal client larder-portal: created" in first
    assert "service account model-server: created" in first
    assert stat.S_IMODE(settings.LARDER_OIDC_CLIENT_SECRET_FILE.stat().st_mode) == 0o600
    portal = Application.objects.get(client_id=CLIENT_ID)
    assert portal.skip_authorization and portal.algorithm == "RS256"
    assert portal.authorization_grant_type == "authorization-code" and portal.client_type == "confidential"
    assert portal.redirect_uris.split() == [
        "http://127.0.0.1:8000/oidc/callback/",
        "http://localhost:8000/oidc/callback/",
    ]
    service = Application.objects.get(client_id="model-server")
    assert service.authorization_grant_type == "client-credentials"
    assert service.service_account.user.username == "model-server"
    secret = credentials.read_text().split("client:model-server ")[1].split()[0]
    assert f"curl -u model-server:{secret} " in first  # the login table shows it

    rows = list(Application.objects.order_by("pk").values_list("pk", "client_secret", "redirect_uris"))
    out = io.StringIO()
    call_command("setup_identity", demo=True, credentials_file=credentials, stdout=out)
    assert "portal client larder-portal: up to date (secret unchanged)" in out.getvalue()
    assert "service account model-server: up to date" in out.getvalue()
    assert list(Application.objects.order_by("pk").values_list("pk", "client_secret", "redirect_uris")) == rows


def test_setup_identity_refuses_without_the_builtin_provider(settings):
    settings.LARDER_BUILTIN_IDP = False
    with pytest.raises(CommandError, match="LARDER_BUILTIN_IDP"):
        call_command("setup_identity", stdout=io.StringIO())
    assert not User.objects.exists() and not Application.objects.exists()


def test_a_bad_provider_answer_ends_the_sign_in_on_the_login_page(provider, foreign_key, rf, monkeypatch):
    """An expired (or otherwise unverifiable) ID token from the token endpoint is a failed
    sign-in, not a server error."""
    key, public = foreign_key
    backend = LarderOIDCBackend()
    backend.OIDC_RP_IDP_SIGN_KEY = public
    expired = id_token(key, exp=datetime.now(UTC) - timedelta(minutes=1))
    monkeypatch.setattr(backend, "get_token", lambda payload: {"id_token": expired, "access_token": "a"})
    request = rf.get("/oidc/callback/?code=c&state=s")
    assert backend.authenticate(request, nonce="n", code_verifier="v") is None


def test_admin_login_page_without_local_passwords(client, provider, scientist, make_user, settings):
    settings.LARDER_LOCAL_LOGIN = False
    client.force_login(scientist)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 403 and b"may not use the admin site" in response.content
    client.force_login(make_user("staffer", is_staff=True))
    response = client.get("/admin/login/?next=/admin/catalog/")
    assert response.status_code == 302 and response["Location"] == "/admin/catalog/"
    settings.LARDER_LOCAL_LOGIN = True
    client.force_login(scientist)
    assert b'name="password"' in client.get("/admin/login/").content  # Django's own form again
