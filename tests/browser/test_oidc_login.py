"""A full browser sign-in through the built-in OIDC provider (issue 3): the portal's
login page, the provider's own sign-in page, the authorization-code flow with PKCE
(the portal's token exchange is a real HTTP call to the live server), the catalog
showing only what the user's role allows, and signing out (RP-initiated logout)."""

import re

import jwt
import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore

from access.management.commands.setup_identity import ensure_portal_client
from access.models import Permission
from catalog.models import DataSource, Project, RegistryChange
from tests.unit.registry_data import make_view

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(live_server, settings, tmp_path):
    """The built-in provider at the live server's address, with the portal's client
    registered for it (as `manage.py setup_identity` does for `make run`)."""
    url = live_server.url
    settings.LARDER_PUBLIC_URL = url
    settings.LARDER_LOCAL_LOGIN = False
    settings.LARDER_OIDC_PROVIDER_NAME = ""
    settings.LARDER_OIDC_CLIENT_SECRET = ""
    settings.LARDER_OIDC_CLIENT_SECRET_FILE = tmp_path / "oidc-client-secret"
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": f"{url}/o"}
    ensure_portal_client(url)
    return url


@pytest.fixture
def catalog():
    """Project p with views visible_a and hidden_b (and a change row each, which the home
    page lists); role data-scientist may DESCRIBE views named visible_.*."""
    project = Project.objects.create(name="p")
    source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet")
    for name in ("visible_a", "hidden_b"):
        make_view(project, name, source)
        RegistryChange.objects.create(
            project=project,
            project_name="p",
            object_type="feature_view",
            object_name=name,
            action="create",
            actor="cli",
        )
    Permission.objects.create(
        project=project,
        name="scientists-see-visible",
        types=["feature_view"],
        name_patterns=["visible_.*"],
        actions=["DESCRIBE"],
        roles=["data-scientist"],
    )


@pytest.fixture
def scientist(make_user):
    return make_user("scientist", roles=("data-scientist",))


def test_sign_in_see_what_the_role_allows_and_sign_out(page, portal, catalog, scientist):
    page.goto(f"{portal}/")
    assert re.search(r"/accounts/login/\?next=/$", page.url), page.url
    assert page.locator("input[name=password]").count() == 0  # LARDER_LOCAL_LOGIN is off

    page.click("text=Sign in with Larder ID")
    page.wait_for_url(re.compile(r"/idp/login/\?next=/o/authorize/"))
    assert "code_challenge_method%3DS256" in page.url
    page.fill("#id_username", "scientist")
    page.fill("#id_password", "pw-scientist")
    page.click("button[type=submit]")

    page.wait_for_url(f"{portal}/")
    assert page.locator("header .who").inner_text() == "scientist"
    changes = page.locator("section.changes").inner_text()
    assert "p/visible_a" in changes and "hidden_b" not in changes
    assert "hidden_b" not in page.content()

    page.goto(f"{portal}/api/v1/feature_views?project=p")
    assert '"visible_a"' in page.content() and "hidden_b" not in page.content()

    # The session was opened by the OIDC backend, and the user's groups are the token's roles.
    session_key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=session_key).load()
    assert session["_auth_user_backend"] == "access.identity.oidc_backend.LarderOIDCBackend"
    claims = jwt.decode(session["oidc_id_token"], options={"verify_signature": False})
    assert claims["iss"] == f"{portal}/o" and claims["preferred_username"] == "scientist"
    user = User.objects.get(username="scientist")
    assert set(user.groups.values_list("name", flat=True)) == set(claims["roles"]) == {"data-scientist"}

    page.goto(f"{portal}/")
    page.click("text=Sign out")
    page.wait_for_url(f"{portal}/accounts/login/")
    assert "_auth_user_id" not in SessionStore(session_key=session_key).load()
    page.goto(f"{portal}/")
    assert re.search(r"/accounts/login/\?next=/$", page.url), page.url
