"""Claims to identity (access.identity.claims): Keycloak and Entra ID token shapes,
username fallbacks, configurable claim paths, and the Django Group sync."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from access.identity.claims import Identity, claim_at, extract_identity, sync_groups
from access.principals import principal_for

# A Keycloak access token for client "larder-portal" (realm roles mapped to top-level `roles`).
KEYCLOAK = {
    "iss": "https://keycloak.example.com/realms/ml",
    "sub": "0b5e4c1c-5b7e-4c0c-9c43-2c1f6c2e9d11",
    "azp": "larder-portal",
    "preferred_username": "alice",
    "email": "alice@example.com",
    "resource_access": {
        "larder-portal": {"roles": ["reader", "Writer"]},
        "account": {"roles": ["manage-account"]},
    },
    "roles": ["realm-analyst"],
    "groups": ["/data-team", "ml"],
}

# An Entra ID (Azure AD) v2 access token: app roles at top-level `roles`, groups as object ids.
ENTRA = {
    "iss": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
    "aud": "api://larder",
    "oid": "a1b2c3d4-0000-0000-0000-000000000001",
    "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
    "upn": "bob@contoso.com",
    "roles": ["Larder.Reader"],
    "groups": ["f3b1a9c2-1111-4a4a-9b9b-000000000001", "f3b1a9c2-1111-4a4a-9b9b-000000000002"],
}


def test_keycloak_shape():
    identity = extract_identity(KEYCLOAK, "larder-portal")
    assert identity.username == "alice"
    assert identity.roles == {"reader", "Writer", "realm-analyst"}  # another client's roles are not ours
    assert identity.groups == {"/data-team", "ml"}
    assert identity.email == "alice@example.com"


def test_keycloak_roles_follow_the_client_id_setting():
    with override_settings(LARDER_OIDC_CLIENT_ID="account"):
        assert extract_identity(KEYCLOAK).roles == {"manage-account", "realm-analyst"}
    with override_settings(LARDER_OIDC_CLIENT_ID="larder-portal"):
        assert extract_identity(KEYCLOAK).roles == {"reader", "Writer", "realm-analyst"}


def test_entra_shape_with_upn():
    identity = extract_identity(ENTRA, "larder-portal")
    assert identity.username == "bob@contoso.com"
    assert identity.roles == {"Larder.Reader"}
    assert identity.groups == {"f3b1a9c2-1111-4a4a-9b9b-000000000001", "f3b1a9c2-1111-4a4a-9b9b-000000000002"}
    assert identity.email == ""


def test_entra_preferred_username_wins_over_upn():
    claims = {**ENTRA, "preferred_username": "bob.p@contoso.com"}
    assert extract_identity(claims, "x").username == "bob.p@contoso.com"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"azp": "larder-batch", "appid": "11111111-2222", "sub": "s-1"}, "larder-batch"),
        ({"appid": "11111111-2222", "sub": "s-1"}, "11111111-2222"),  # Entra client-credentials token
        ({"sub": "s-1"}, "s-1"),
        ({"preferred_username": "", "upn": "", "sub": "s-2"}, "s-2"),  # empty values are skipped
    ],
)
def test_username_fallbacks(claims, expected):
    assert extract_identity(claims, "c").username == expected


def test_no_username_claim_is_an_error():
    with pytest.raises(ValueError, match="preferred_username"):
        extract_identity({"roles": ["reader"], "email": "x@example.com"}, "c")


def test_custom_claim_paths():
    claims = {
        "user": {"login": "carol"},
        "sub": "ignored",
        "realm_access": {"roles": ["offline_access", "scientist"]},
        "ext": {"teams": ["fraud"]},
        "roles": ["not-read"],
    }
    with override_settings(
        LARDER_OIDC_USERNAME_CLAIMS=["user.login", "sub"],
        LARDER_OIDC_ROLES_CLAIMS=["realm_access.roles"],
        LARDER_OIDC_GROUPS_CLAIMS=["ext.teams"],
    ):
        identity = extract_identity(claims, "c")
    assert identity == Identity(
        username="carol", roles=frozenset({"offline_access", "scientist"}), groups=frozenset({"fraud"})
    )


def test_claim_at_ignores_non_mappings():
    assert claim_at({"a": ["b"]}, "a.b") is None
    assert claim_at({"a": {"b": 3}}, "a.b") == 3
    assert claim_at({}, "a") is None


def test_roles_are_case_sensitive_and_non_strings_dropped():
    claims = {"sub": "d", "roles": ["Reader", "reader", "READER", {"nested": 1}, None, 7], "groups": "solo"}
    identity = extract_identity(claims, "c")
    assert identity.roles == {"Reader", "reader", "READER", "7"}
    assert identity.groups == {"solo"}


# -- sync_groups ---------------------------------------------------------------------------


def _write_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_sync_groups_adds_and_removes(make_user):
    user = make_user("erin", roles=("old-role", "kept"))
    Group.objects.create(name="someone-elses")
    assert principal_for(user).roles == {"old-role", "kept"}  # memoised on the user...

    changed = sync_groups(user, Identity("erin", roles=frozenset({"kept", "new-role"}), groups=frozenset({"team"})))

    assert changed is True
    assert set(user.groups.values_list("name", flat=True)) == {"kept", "new-role", "team"}
    assert principal_for(user).roles == {"kept", "new-role", "team"}  # ...and forgotten on change
    assert Group.objects.filter(name="old-role").exists()  # other users may still hold it
    assert Group.objects.filter(name="someone-elses").exists()


def test_sync_groups_role_and_group_of_one_name_are_one_group(make_user):
    user = make_user("frank")
    sync_groups(user, Identity("frank", roles=frozenset({"ml"}), groups=frozenset({"ml"})))
    assert list(user.groups.values_list("name", flat=True)) == ["ml"]
    assert Group.objects.filter(name="ml").count() == 1


def test_sync_groups_keeps_case_apart(make_user):
    user = make_user("gina")
    sync_groups(user, Identity("gina", roles=frozenset({"Reader", "reader"})))
    assert set(user.groups.values_list("name", flat=True)) == {"Reader", "reader"}


def test_sync_groups_writes_nothing_when_unchanged(make_user):
    user = make_user("hank", roles=("reader", "team"))
    with CaptureQueriesContext(connection) as queries:
        changed = sync_groups(user, Identity("hank", roles=frozenset({"reader"}), groups=frozenset({"team"})))
    assert changed is False
    assert _write_queries(queries.captured_queries) == []
    assert len(queries.captured_queries) == 1  # one read of the current groups


def test_sync_groups_to_nothing(make_user):
    user = make_user("ivy", roles=("reader",))
    assert sync_groups(user, Identity("ivy")) is True
    assert not user.groups.exists()
