"""An external provider's username must not take over a local account with a password."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation

from access.identity.oidc_backend import LarderOIDCBackend

pytestmark = pytest.mark.django_db


def test_browser_login_from_an_external_provider_refuses_a_local_account(settings):
    settings.LARDER_OIDC_AUTHORIZATION_ENDPOINT = "https://idp.example.com/authorize"
    local = User.objects.create_user("bob", password="local-secret")
    with pytest.raises(SuspiciousOperation, match="local account"):
        LarderOIDCBackend().update_user(local, {"preferred_username": "bob", "sub": "1"})


def test_browser_login_through_the_builtin_provider_maps_local_accounts(settings):
    settings.LARDER_OIDC_DISCOVERY_URL = ""
    settings.LARDER_OIDC_AUTHORIZATION_ENDPOINT = ""
    settings.LARDER_BUILTIN_IDP = True
    local = User.objects.create_user("bob", password="local-secret")
    claims = {"preferred_username": "bob", "sub": "1", "roles": ["reader"]}
    assert LarderOIDCBackend().update_user(local, claims) == local
    assert list(local.groups.values_list("name", flat=True)) == ["reader"]
