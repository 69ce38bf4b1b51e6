"""Roles, groups and username from OIDC claims, Feast's way by default.

Feast (permissions/auth/oidc_token_parser.py) reads roles from
`resource_access.<client_id>.roles` merged with top-level `roles`, groups from `groups`,
and the username from the first of `preferred_username`, `upn`, `azp`, `appid`, `sub`.
The claim paths are settings so that Keycloak, Entra ID, Okta... all fit.
Role names are case-sensitive and kept as given.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction


@dataclass(frozen=True)
class Identity:
    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    email: str = ""


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (`resource_access.larder.roles`), or None."""
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, dict | bytes):
        return [str(v) for v in value if isinstance(v, str | int) and str(v)]
    return []


def _paths(setting: str, client_id: str) -> list[str]:
    return [p.replace("{client_id}", client_id) for p in getattr(settings, setting)]


def extract_identity(claims: dict[str, Any], client_id: str | None = None) -> Identity:
    """The identity a token's claims describe; ValueError when no username claim is present."""
    client_id = client_id if client_id is not None else settings.LARDER_OIDC_CLIENT_ID
    username = next(
        (str(v) for p in _paths("LARDER_OIDC_USERNAME_CLAIMS", client_id) if (v := claim_at(claims, p))),
        "",
    )
    if not username:
        raise ValueError("the token has none of the username claims " + ", ".join(settings.LARDER_OIDC_USERNAME_CLAIMS))
    roles = {r for p in _paths("LARDER_OIDC_ROLES_CLAIMS", client_id) for r in _strings(claim_at(claims, p))}
    groups = {g for p in _paths("LARDER_OIDC_GROUPS_CLAIMS", client_id) for g in _strings(claim_at(claims, p))}
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    return Identity(username=username, roles=frozenset(roles), groups=frozenset(groups), email=email)


def sync_groups(user: AbstractBaseUser, identity: Identity) -> bool:
    """Make the user's Django Groups exactly the identity's roles and groups (the token is
    the source of truth for people who sign in through OIDC). Returns whether anything changed.

    Django Groups stand for both roles and groups in the permission matcher, so a role
    and a group with the same name are one and the same there."""
    wanted = set(identity.roles | identity.groups)
    current = set(user.groups.values_list("name", flat=True))
    if wanted == current:
        return False
    with transaction.atomic():
        existing = {g.name: g for g in Group.objects.filter(name__in=wanted)}
        missing = [Group(name=n) for n in wanted if n not in existing]
        Group.objects.bulk_create(missing, ignore_conflicts=True)
        user.groups.set(Group.objects.filter(name__in=wanted))
    from access.principals import forget_principal

    forget_principal(user)
    return True


class LocalAccountConflict(Exception):
    """An external provider's username names an account that signs in with a local password."""


def refuse_local_account(user: AbstractBaseUser, external: bool) -> None:
    """An external provider must not sign in as an account that has a local password.

    Usernames from a provider are often editable by their owner (`preferred_username`);
    without this, a provider user who calls themselves `admin` would become the local
    superuser `admin`. Accounts the provider created have no usable password, so they
    are unaffected, and an admin may still promote them. The built-in provider is the
    local user store itself, so it is not "external"."""
    if external and user.has_usable_password():
        raise LocalAccountConflict(
            f"the provider's user {user.get_username()!r} matches a local account with a password; "
            "rename one of them (Larder will not merge them)"
        )
