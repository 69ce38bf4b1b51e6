"""Who a user is, for the permission matcher: their roles and groups.

Until the identity issue maps OIDC claims, Django Groups stand for both roles and
groups. The result is memoised on the user object, which lives for one request.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


@dataclass(frozen=True)
class Principal:
    username: str
    roles: frozenset[str]
    groups: frozenset[str]
    is_superuser: bool = False
    is_authenticated: bool = True


ANONYMOUS = Principal(username="", roles=frozenset(), groups=frozenset(), is_authenticated=False)


def principal_for(user: AbstractBaseUser | AnonymousUser | None) -> Principal:
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    cached = getattr(user, "_larder_principal", None)
    if cached is not None:
        return cached
    names = frozenset(user.groups.values_list("name", flat=True))
    principal = Principal(
        username=user.get_username(),
        roles=names,
        groups=names,
        is_superuser=bool(user.is_superuser),
    )
    user._larder_principal = principal
    return principal


# Attributes memoised on a user object for one request (here and in access.policy).
MEMOS = ("_larder_principal", "_larder_permissions")


def forget_principal(user: AbstractBaseUser) -> None:
    """Drop the memo after the user's groups change within one request (tests, logins)."""
    for attr in MEMOS:
        if hasattr(user, attr):
            delattr(user, attr)
