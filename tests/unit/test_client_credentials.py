"""Service accounts: a client-credentials token from the built-in provider, then the API
with it, seeing exactly what the service account's roles allow (the whole chain:
/o/token/ -> BearerAuthentication -> access.identity.dot_tokens -> the gate)."""

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.test import Client
from oauth2_provider.models import AccessToken, Application

from access.identity.dot_tokens import token_checksum
from access.models import Permission, ServiceAccount
from catalog.models import DataSource, Project
from tests.unit.registry_data import make_view

pytestmark = pytest.mark.django_db

SECRET = "s3cret-of-the-model-server"
API = "/api/v1/feature_views?project=p"
INVALID = {"status_code": 401, "detail": "Invalid or expired access token", "error_type": "AuthenticationError"}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def cc_app(client_id: str) -> Application:
    return Application.objects.create(
        client_id=client_id,
        client_secret=SECRET,
        name=client_id,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )


@pytest.fixture
def registry():
    """Project p with views visible_a, visible_b, hidden_c; role `model-server` may
    DESCRIBE the views named visible_.*; `other-role` may see everything."""
    project = Project.objects.create(name="p")
    source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet")
    for name in ("visible_a", "visible_b", "hidden_c"):
        make_view(project, name, source)
    Permission.objects.create(
        project=project,
        name="ms",
        types=["feature_view"],
        name_patterns=["visible_.*"],
        actions=["DESCRIBE"],
        roles=["model-server"],
    )
    Permission.objects.create(project=project, name="all", actions=["ALL"], roles=["other-role"])
    return project


@pytest.fixture
def service_account(make_user):
    user = make_user("model-server", roles=("model-server",))
    user.set_unusable_password()
    user.save()
    return ServiceAccount.objects.create(user=user, application=cc_app("model-server"))


def get_token(client: Client, client_id: str = "model-server", secret: str = SECRET, scope: str | None = "api"):
    body = {"grant_type": "client_credentials", **({"scope": scope} if scope is not None else {})}
    return client.post(
        "/o/token/",
        urlencode(body),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(client_id, secret),
    )


def call_api(token: str, path: str = API):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def view_names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["spec"]["name"] for item in response.json()["featureViews"]]


def test_service_account_sees_exactly_what_its_role_allows(client, registry, service_account):
    response = get_token(client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "api" and body["expires_in"] > 0
    token = body["access_token"]
    assert view_names(call_api(token)) == ["visible_a", "visible_b"]
    assert call_api(token, "/api/v1/feature_views/hidden_c?project=p").status_code == 404
    assert call_api(token, "/api/v1/entities?project=p").json()["entities"] == []
    # the token's text is not stored, only its SHA-256
    stored = AccessToken.objects.get(token_checksum=token_checksum(token))
    assert stored.token == "" and stored.user is None


def test_roles_are_read_at_each_call(client, registry, service_account):
    """An admin changes the service account's groups: the same token sees the change."""
    token = get_token(client).json()["access_token"]
    assert view_names(call_api(token)) == ["visible_a", "visible_b"]
    service_account.user.groups.set([])
    assert view_names(call_api(token)) == []
    service_account.user.groups.create(name="other-role")
    assert view_names(call_api(token)) == ["hidden_c", "visible_a", "visible_b"]


def test_the_default_scope_is_the_api(client, registry, service_account):
    token = get_token(client, scope=None).json()["access_token"]
    assert view_names(call_api(token)) == ["visible_a", "visible_b"]


def test_wrong_secret_is_refused_by_the_token_endpoint(client, service_account):
    response = get_token(client, secret="not-it")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    response = get_token(client, client_id="nobody")
    assert response.status_code == 401
    assert not AccessToken.objects.exists()


def test_a_token_without_the_api_scope_is_401(client, registry, service_account):
    response = get_token(client, scope="profile")
    assert response.status_code == 200 and response.json()["scope"] == "profile"
    response = call_api(response.json()["access_token"])
    assert response.status_code == 401 and response.json() == INVALID


def test_a_revoked_token_is_401(client, registry, service_account):
    token = get_token(client).json()["access_token"]
    assert call_api(token).status_code == 200
    response = client.post(
        "/o/revoke_token/",
        urlencode({"token": token, "token_type_hint": "access_token"}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic("model-server", SECRET),
    )
    assert response.status_code == 200
    response = call_api(token)
    assert response.status_code == 401 and response.json() == INVALID


def test_an_expired_token_is_401(client, registry, service_account):
    token = get_token(client).json()["access_token"]
    AccessToken.objects.filter(token_checksum=token_checksum(token)).update(
        expires=datetime.now(UTC) - timedelta(seconds=1)
    )
    response = call_api(token)
    assert response.status_code == 401 and response.json() == INVALID


def test_a_client_without_a_service_account_is_401(client, registry, service_account):
    cc_app("stray-client")
    response = get_token(client, client_id="stray-client")
    assert response.status_code == 200  # the provider issues it...
    response = call_api(response.json()["access_token"])
    assert response.status_code == 401 and response.json() == INVALID  # ...the API does not take it


def test_a_deactivated_service_account_is_401(client, registry, service_account):
    token = get_token(client).json()["access_token"]
    User.objects.filter(pk=service_account.user_id).update(is_active=False)
    assert call_api(token).status_code == 401


def test_a_user_token_with_the_api_scope_acts_as_that_user(registry, make_user):
    """Tokens issued to a person (authorization code) carry that person's roles."""
    person = make_user("reader", roles=("other-role",))
    app = cc_app("some-app")
    AccessToken.objects.create(
        user=person,
        application=app,
        token="user-token-abc",
        scope="openid api",
        expires=datetime.now(UTC) + timedelta(hours=1),
    )
    assert view_names(call_api("user-token-abc")) == ["hidden_c", "visible_a", "visible_b"]


def test_unknown_opaque_tokens_are_401_and_other_kinds_pass_by(registry, settings):
    from access.identity import dot_tokens

    assert call_api("no-such-token").status_code == 401
    assert dot_tokens.verify("lrd_abc_def", None) is None
    assert dot_tokens.verify("aaa.bbb.ccc", None) is None
    settings.LARDER_BUILTIN_IDP = False
    assert dot_tokens.verify("no-such-token", None) is None
