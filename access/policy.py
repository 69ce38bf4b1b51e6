"""The one authorization gate: `authorize` decides for one object, `restrict` filters
a queryset. Both rest on `_grants`, so they cannot disagree.

Rules (Feast's, with Larder's stricter choices, see DESIGN.md):
- a permission applies to objects of its own project only (feast#6784);
- it matches when the object's type is in `types` (empty: all types), a regex in
  `name_patterns` full-matches the name (empty: all names), and every
  `required_tags` pair is in the object's tags (Feast ignores them by a bug);
- it must list every requested action; one permission whose policy grants is enough;
- default deny: no matching permission, no access. Superusers pass.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet

from .actions import Action
from .principals import Principal, principal_for

ActionArg = Action | str | Iterable[Action | str]


class AccessDenied(PermissionDenied):
    """PermissionDenied that names the object and the actions, for 403 bodies."""

    def __init__(self, message: str, resource_type: str = "", name: str = "", actions: list[str] | None = None):
        super().__init__(message)
        self.resource_type = resource_type
        self.name = name
        self.actions = actions or []


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.strip())


def _as_actions(actions: ActionArg) -> frozenset[str]:
    if isinstance(actions, str):
        return frozenset([str(Action(actions))])
    return frozenset(str(Action(a)) for a in actions)


def resource_type_of(model_or_obj: Model | type[Model]) -> str:
    rtype = getattr(model_or_obj, "resource_type", "")
    if not rtype:
        raise TypeError(f"{model_or_obj!r} is not a registry resource (no resource_type)")
    return rtype


def _project_id(obj: Any) -> int | None:
    return obj.pk if resource_type_of(obj) == "project" else obj.project_id


def _policy_grants(permission: Any, principal: Principal) -> bool:
    return bool(set(permission.roles) & principal.roles or set(permission.groups) & principal.groups)


def _user_permissions(user: Any, principal: Principal) -> list[Any]:
    """The permissions whose policy grants this user, loaded once per request."""
    cached = getattr(user, "_larder_permissions", None)
    if cached is not None:
        return cached
    from .models import Permission

    granted = [p for p in Permission.objects.all() if _policy_grants(p, principal)]
    if user is not None and principal.is_authenticated:
        user._larder_permissions = granted
    return granted


def _covers(permission: Any, rtype: str, actions: frozenset[str]) -> bool:
    return (not permission.types or rtype in permission.types) and actions <= set(permission.actions)


def _matches_object(permission: Any, name: str, tags: dict | None) -> bool:
    if permission.name_patterns and not any(_compiled(p).fullmatch(name) for p in permission.name_patterns):
        return False
    tags = tags or {}
    return all(str(tags.get(k)) == str(v) and k in tags for k, v in (permission.required_tags or {}).items())


def _grants(
    permission: Any, rtype: str, actions: frozenset[str], project_id: int | None, name: str, tags: dict
) -> bool:
    return (
        permission.project_id == project_id
        and _covers(permission, rtype, actions)
        and _matches_object(permission, name, tags)
    )


@dataclass(frozen=True, slots=True)
class PermissionRule:
    """A Permission row as plain immutable data, for callers that cache a project's
    permissions between requests (serving.registry_cache) instead of querying them."""

    project_id: int
    types: frozenset[str]
    name_patterns: tuple[str, ...]
    required_tags: dict[str, Any]
    actions: frozenset[str]
    roles: frozenset[str]
    groups: frozenset[str]


def project_rules(project_id: int) -> tuple[PermissionRule, ...]:
    """Every permission of one project (they guard nothing outside it)."""
    from .models import Permission

    return tuple(
        PermissionRule(
            project_id=row["project_id"],
            types=frozenset(row["types"] or ()),
            name_patterns=tuple(row["name_patterns"] or ()),
            required_tags=dict(row["required_tags"] or {}),
            actions=frozenset(row["actions"] or ()),
            roles=frozenset(row["roles"] or ()),
            groups=frozenset(row["groups"] or ()),
        )
        for row in Permission.objects.filter(project_id=project_id).values(
            "project_id", "types", "name_patterns", "required_tags", "actions", "roles", "groups"
        )
    )


def permits(principal: Principal, permissions: Sequence[Any], actions: ActionArg, obj: Any) -> bool:
    """`is_allowed` for a principal and a list of permissions the caller already holds
    (rows or PermissionRules, of any projects): the same predicate, no queries."""
    if not principal.is_authenticated:
        return False
    if principal.is_superuser:
        return True
    wanted = _as_actions(actions)
    rtype = resource_type_of(obj)
    project_id = _project_id(obj)
    return any(
        _grants(p, rtype, wanted, project_id, obj.name, obj.tags) and _policy_grants(p, principal) for p in permissions
    )


def is_allowed(user: Any, actions: ActionArg, obj: Any) -> bool:
    """True when `user` may perform all `actions` on `obj` (saved or not yet saved)."""
    principal = principal_for(user)
    if principal.is_superuser or not principal.is_authenticated:  # decided without loading permissions
        return permits(principal, (), actions, obj)
    return permits(principal, _user_permissions(user, principal), actions, obj)


def authorize(user: Any, actions: ActionArg, obj: Any) -> None:
    """Raise AccessDenied unless `user` may perform all `actions` on `obj`."""
    if is_allowed(user, actions, obj):
        return
    wanted = sorted(_as_actions(actions))
    rtype = resource_type_of(obj)
    project = obj.name if rtype == "project" else getattr(obj.project, "name", "?")
    raise AccessDenied(
        f"Permission denied: {', '.join(wanted)} on {rtype} {obj.name!r} in project {project!r}",
        resource_type=rtype,
        name=obj.name,
        actions=wanted,
    )


def restrict(queryset: QuerySet, user: Any, actions: ActionArg = Action.DESCRIBE) -> QuerySet:
    """The objects of `queryset` on which `user` may perform all `actions`.

    Permissions without name patterns or required tags admit a whole project in
    SQL; name patterns the database matches exactly as `re.fullmatch` does are
    matched in SQL too (no per-request loop over every name); the others are
    evaluated per object with the same predicate as `authorize`.
    """
    model = queryset.model
    gate_through = getattr(model, "gate_through", None)
    if gate_through is not None:
        return gate_through(queryset, user, actions)
    principal = principal_for(user)
    if not principal.is_authenticated:
        return queryset.none()
    if principal.is_superuser:
        return queryset
    rtype = resource_type_of(model)
    wanted = _as_actions(actions)
    candidates = [p for p in _user_permissions(user, principal) if _covers(p, rtype, wanted)]
    if not candidates:
        return queryset.none()
    project_field = "pk" if rtype == "project" else "project_id"
    whole = {p.project_id for p in candidates if not p.name_patterns and not p.required_tags}
    partial = [p for p in candidates if p.project_id not in whole]
    condition = Q(**{f"{project_field}__in": whole})
    # Name patterns that mean the same in the database's regex engine (access.name_patterns)
    # are matched there, anchored; permissions with required tags or other patterns are
    # evaluated per object in Python below.
    from django.db import connections

    from .name_patterns import SQL_VENDORS, sql_regex

    in_sql = connections[queryset.db].vendor in SQL_VENDORS
    in_python = []
    for p in partial:
        regexes = [sql_regex(pattern) for pattern in p.name_patterns] if in_sql and not p.required_tags else [None]
        if None in regexes:
            in_python.append(p)
            continue
        names = Q()
        for regex in regexes:
            names |= Q(name__regex=regex)
        condition |= Q(**{project_field: p.project_id}) & names
    partial = in_python
    if partial:
        # Tags are read (and JSON-decoded, the bulk of the cost) only when a permission needs them.
        need_tags = any(p.required_tags for p in partial)
        rows = queryset.filter(**{f"{project_field}__in": {p.project_id for p in partial}}).values_list(
            "pk", project_field, "name", *(["tags"] if need_tags else [])
        )
        allowed = [
            pk
            for pk, project_id, name, *tags in rows
            if any(_grants(p, rtype, wanted, project_id, name, tags[0] if tags else {}) for p in partial)
        ]
        condition |= Q(pk__in=allowed)
    return queryset.filter(condition)


def has_any(user: Any, actions: ActionArg, rtype: str, project_id: int | None = None) -> bool:
    """Whether some permission could let `user` do `actions` on some `rtype` object
    (in project `project_id` when given).

    Used where no object exists yet (the admin's "add" button, its project choices)."""
    principal = principal_for(user)
    if not principal.is_authenticated:
        return False
    if principal.is_superuser:
        return True
    wanted = _as_actions(actions)
    return any(
        _covers(p, rtype, wanted) and (project_id is None or p.project_id == project_id)
        for p in _user_permissions(user, principal)
    )
