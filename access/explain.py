"""Explanations of the gate, for people: which permissions apply to an object, and
what the viewer may do with it.

This module decides nothing. It reuses the matcher of access.policy (type, name
patterns, required tags, same project) so that what the portal shows as "applies to
this object" is exactly what authorize() evaluates; the policy (roles, groups) and the
actions are shown, not applied.
"""

from typing import Any

from django.db.models import QuerySet

from .actions import Action
from .models import Permission
from .policy import _matches_object, _project_id, is_allowed, resource_type_of


def applies_to(permission: Any, obj: Any) -> bool:
    """Whether `permission` matches `obj` (project, type, name patterns, required tags),
    whatever its actions and policy."""
    rtype = resource_type_of(obj)
    return (
        permission.project_id == _project_id(obj)
        and (not permission.types or rtype in permission.types)
        and _matches_object(permission, obj.name, obj.tags)
    )


def permissions_matching(obj: Any, permissions: QuerySet | list | None = None) -> list[Permission]:
    """Every Permission of `obj`'s project that applies to it, in name order.

    `permissions` narrows the candidates (e.g. to those the viewer may DESCRIBE);
    by default all of the project's permissions are considered."""
    if permissions is None:
        permissions = Permission.objects.filter(project_id=_project_id(obj))
    candidates = sorted(permissions, key=lambda p: p.name)
    return [p for p in candidates if applies_to(p, obj)]


def actions_allowed(user: Any, obj: Any) -> list[str]:
    """The actions `user` may perform on `obj`, each decided by is_allowed."""
    return [action.value for action in Action if is_allowed(user, action, obj)]
