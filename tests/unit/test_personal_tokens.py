"""Personal API tokens: created on /account/tokens/ (shown once, stored hashed), used as
bearer tokens with the owner's roles, revoked or expired (then 401)."""

import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.contrib.auth.models import Group
from django.test import Client

from access.identity.personal_tokens import issue_token
from access.models import ApiToken, Permission
from catalog.models import DataSource, Project
from tests.unit.registry_data import make_view

pytestmark = pytest.mark.django_db

PAGE = "/account/tokens/"
VIEWS_URL = "/api/v1/feature_views?project=p"
TOKEN_TEXT = re.compile(r"lrd_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}")
INVALID = {"status_code": 401, "detail": "Invalid or expired access token", "error_type": "AuthenticationError"}


@pytest.fixture
def registry() -> Project:
    """Project p: public views for role reader, a private one for nobody here."""
    project = Project.objects.create(name="p")
    source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet", timestamp_field="ts")
    for name in ("public_a", "public_b", "private_x"):
        make_view(project, name, source)
    Permission.objects.create(
        project=project, name="readers", types=["feature_view"], name_patterns=["public_.*"],
        actions=["DESCRIBE"], roles=["reader"],
    )  # fmt: skip
    return project


@pytest.fixture
def alice(make_user):
    return make_user("alice", roles=("reader",))


@pytest.fixture
def page(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def bearer(token: str, url: str = VIEWS_URL, client: Client | None = None):
    return (client or Client()).get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def view_names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(item["spec"]["name"] for item in response.json()["featureViews"])


def create(page: Client, name: str = "notebook", days: int = 30):
    return page.post(PAGE, {"name": name, "days": days})


# -- the page --------------------------------------------------------------------------------


def test_created_token_is_shown_once_and_stored_hashed(page, alice, registry):
    response = create(page)
    assert response.status_code == 200
    html = response.content.decode()
    shown = TOKEN_TEXT.findall(html)
    assert shown and len(set(shown)) == 1  # the token, and the curl example with it
    token = shown[0]
    assert "shown only this once" in html
    assert f'curl -H "Authorization: Bearer {token}" http://testserver/api/v1/projects' in html
    assert response["Cache-Control"].startswith("max-age=0")  # never_cache: not kept by the browser

    row = ApiToken.objects.get(user=alice)
    assert row.name == "notebook"
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(f"lrd_{row.prefix}_")
    stored = json.dumps([list(r.values()) for r in ApiToken.objects.values()], default=str)
    assert token not in stored and token.split("_")[2] not in stored  # only the digest and prefix

    later = page.get(PAGE).content.decode()
    assert TOKEN_TEXT.search(later) is None  # not retrievable later
    assert f"lrd_{row.prefix}_…" in later and "notebook" in later and "active" in later


def test_default_and_expiry(page, alice, settings):
    settings.LARDER_API_TOKEN_DEFAULT_DAYS = 7
    assert 'value="7"' in page.get(PAGE).content.decode()
    create(page, days=90)
    row = ApiToken.objects.get(user=alice)
    assert abs(row.expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)


def test_expiry_above_maximum_is_a_form_error(page, alice, settings):
    settings.LARDER_API_TOKEN_MAX_DAYS = 60
    response = create(page, days=61)
    assert response.status_code == 400
    assert "A token can live at most 60 days." in response.content.decode()
    assert TOKEN_TEXT.search(response.content.decode()) is None
    for bad in (0, -3, "soon"):
        assert create(page, days=bad).status_code == 400
    assert page.post(PAGE, {"days": 10}).status_code == 400  # a name is required
    assert not ApiToken.objects.exists()
    assert create(page, days=60).status_code == 200


def test_the_page_lists_only_own_tokens(page, make_user):
    other = make_user("bob")
    issue_token(other, "bobs-secret-job", 30)
    create(page, name="mine")
    html = page.get(PAGE).content.decode()
    assert "mine" in html and "bobs-secret-job" not in html


def test_page_needs_a_login():
    response = Client().get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Client().post(PAGE, {"name": "x", "days": 1}).status_code == 302
    assert not ApiToken.objects.exists()


def test_post_without_csrf_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(PAGE, {"name": "x", "days": 1}).status_code == 403
    token, _ = issue_token(alice, "kept", 30)
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 403
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()
    assert ApiToken.objects.count() == 1


# -- using a token ---------------------------------------------------------------------------


def test_token_calls_the_api_with_the_owners_roles(page, alice, registry):
    token = TOKEN_TEXT.search(create(page).content.decode()).group()
    assert view_names(bearer(token)) == ["public_a", "public_b"]
    alice.groups.add(Group.objects.create(name="unrelated"))  # roles are read at each call, nothing to sync
    assert view_names(bearer(token)) == ["public_a", "public_b"]
    alice.groups.clear()
    assert view_names(bearer(token)) == []


def test_revoked_token_is_401(page, alice, registry):
    token = TOKEN_TEXT.search(create(page).content.decode()).group()
    row = ApiToken.objects.get(user=alice)
    assert bearer(token).status_code == 200
    response = page.post(f"/account/tokens/{row.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == PAGE
    response = bearer(token)
    assert (response.status_code, response.json()) == (401, INVALID)
    assert response["WWW-Authenticate"] == 'Bearer realm="larder"'
    html = page.get(PAGE).content.decode()
    assert "revoked" in html and "Revoke</button>" not in html


def test_expired_token_is_401(alice, registry):
    row, token = issue_token(alice, "short", 1)
    assert bearer(token).status_code == 200
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    row.save(update_fields=["expires_at"])  # as an admin would: the verified token is not reused
    response = bearer(token)
    assert (response.status_code, response.json()) == (401, INVALID)


def test_a_token_expiring_while_cached_is_refused_at_its_expiry(alice, registry):
    row, token = issue_token(alice, "short", 1)
    row.expires_at = datetime.now(UTC) + timedelta(seconds=0.6)
    row.save(update_fields=["expires_at"])
    assert bearer(token).status_code == 200  # verified, and remembered until it expires
    time.sleep(0.7)
    response = bearer(token)
    assert (response.status_code, response.json()) == (401, INVALID)


def test_inactive_owner_is_401(alice, registry):
    _, token = issue_token(alice, "t", 1)
    alice.is_active = False
    alice.save()
    assert bearer(token).status_code == 401


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret, right prefix
        lambda t: t.replace("lrd_", "lrd_x", 1),  # prefix of the wrong length
        lambda t: t.split("_")[0] + "_" + t.split("_")[1],  # no secret
        lambda t: "lrd_",
        lambda t: t.upper(),
    ],
)
def test_malformed_or_wrong_token_is_401(alice, registry, mangle):
    _, token = issue_token(alice, "t", 1)
    response = bearer(mangle(token))
    assert (response.status_code, response.json()) == (401, INVALID)


def test_revoking_another_users_token_is_404(page, make_user):
    other_token, text = issue_token(make_user("bob", roles=("reader",)), "bobs", 30)
    assert page.post(f"/account/tokens/{other_token.pk}/revoke/").status_code == 404
    assert page.post("/account/tokens/999999/revoke/").status_code == 404
    other_token.refresh_from_db()
    assert other_token.revoked_at is None
    assert bearer(text).status_code != 401


def test_revoke_is_post_only(page, alice):
    row, _ = issue_token(alice, "t", 1)
    assert page.get(f"/account/tokens/{row.pk}/revoke/").status_code == 405
    row.refresh_from_db()
    assert row.revoked_at is None


def test_bearer_writes_need_no_csrf(alice, registry):
    Permission.objects.create(project=registry, name="creators", types=["entity"], actions=["CREATE"], roles=["reader"])
    _, token = issue_token(alice, "ci", 1)
    client = Client(enforce_csrf_checks=True)
    body = {"project": "p", "name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"}
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.post("/api/v1/entities", body, content_type="application/json", **auth)
    assert response.status_code == 201, response.content


def test_session_writes_still_need_csrf(alice, registry):
    Permission.objects.create(project=registry, name="creators", types=["entity"], actions=["CREATE"], roles=["reader"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    body = {"project": "p", "name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"}
    response = client.post("/api/v1/entities", body, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_last_used_is_written_at_most_once_a_minute(alice, registry, monkeypatch):
    from access.identity import personal_tokens

    row, token = issue_token(alice, "t", 1)
    assert bearer(token).status_code == 200
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    assert bearer(token).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at == first  # no write within the minute
    # A minute later (the resolution shortened instead of waiting), a use answered from
    # the bearer cache is recorded again.
    monkeypatch.setattr(personal_tokens, "LAST_USED_RESOLUTION", timedelta(0))
    assert bearer(token).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at > first


def test_a_token_only_works_on_the_api(alice, registry):
    """Bearer tokens identify API calls; HTML pages still need a browser login."""
    _, token = issue_token(alice, "t", 1)
    response = Client().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# -- the admin: superusers list and revoke, nobody sees a digest -------------------------------


def test_admin_is_superuser_only_and_never_shows_digests(make_user, alice):
    from django.contrib.auth.models import Permission as DjangoPermission

    row, text = issue_token(alice, "nb-token", 30)
    root = Client()
    root.force_login(make_user("root", is_superuser=True, is_staff=True))
    for url in ("/admin/access/apitoken/", f"/admin/access/apitoken/{row.pk}/change/"):
        html = root.get(url).content.decode()
        assert "nb-token" in html and row.prefix in html
        assert row.digest not in html and text not in html
    assert root.get("/admin/access/apitoken/add/").status_code == 403  # issued on the owner's page only

    staff = make_user("staff", is_staff=True)  # even with Django's model permissions
    staff.user_permissions.add(*DjangoPermission.objects.filter(content_type__app_label="access"))
    other = Client()
    other.force_login(staff)
    assert other.get("/admin/access/apitoken/").status_code == 403
    assert other.get("/admin/access/serviceaccount/").status_code == 403

    response = root.post("/admin/access/apitoken/", {"action": "revoke_tokens", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert bearer(text).status_code == 401


# -- over real HTTP, the way curl sends it -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_curl_like_call_over_http(live_server, make_user):
    project = Project.objects.create(name="p")
    source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet", timestamp_field="ts")
    make_view(project, "public_a", source)
    make_view(project, "private_x", source)
    Permission.objects.create(
        project=project, name="r", types=["feature_view"], name_patterns=["public_.*"], actions=["DESCRIBE"],
        roles=["reader"],
    )  # fmt: skip
    _, token = issue_token(make_user("carol", roles=("reader",)), "curl", 1)

    response = requests.get(live_server.url + VIEWS_URL, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert [item["spec"]["name"] for item in response.json()["featureViews"]] == ["public_a"]

    response = requests.get(live_server.url + VIEWS_URL, headers={"Authorization": "Bearer lrd_nope_nope"}, timeout=10)
    assert (response.status_code, response.json()) == (401, INVALID)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="larder"'
