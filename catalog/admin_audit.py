"""What the admin writes beside each edit: a RegistryChange row and a Project.version bump.

Kept apart from the gate (access/admin_gate.py) because it is bookkeeping, not a
decision. Values are turned into plain JSON here: related objects by name, durations
and datetimes the way DjangoJSONEncoder writes them.
"""

import json
from collections.abc import Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F, Model, QuerySet
from django.utils import timezone

from catalog import search_index
from catalog.models import Project, RegistryChange

ACTOR = "admin"
# Bookkeeping columns that say nothing about the definition.
_SKIPPED = {"id", "created_at", "updated_at", "version"}


def jsonable(value: Any) -> Any:
    """A JSON-serialisable stand-in for a form or model value (objects by name)."""
    if isinstance(value, Model):
        return getattr(value, "name", str(value))
    if isinstance(value, QuerySet | list | tuple | set | frozenset) and not isinstance(value, str | bytes):
        return [jsonable(v) for v in value]
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def field_value(obj: Model, name: str) -> Any:
    """The stored value of one form field of `obj` (many-to-many: the related names)."""
    field = obj._meta.get_field(name)
    if field.many_to_many:
        return jsonable(list(getattr(obj, name).all()) if obj.pk else [])
    return jsonable(getattr(obj, name))


def definition(obj: Model) -> dict[str, Any]:
    """The whole definition of `obj`, for create and delete rows."""
    data = {f.name: field_value(obj, f.name) for f in obj._meta.concrete_fields if f.name not in _SKIPPED}
    data.update({f.name: field_value(obj, f.name) for f in obj._meta.many_to_many})
    return data


def rows(objs: Iterable[Model], parent_field: str) -> list[dict[str, Any]]:
    """Inline rows (fields, projections) as plain dicts, without their parent link."""
    skipped = _SKIPPED | {parent_field}
    return [
        {f.name: jsonable(getattr(o, f.name)) for f in o._meta.concrete_fields if f.name not in skipped} for o in objs
    ]


def record(user: Any, obj: Model, action: str, diff: dict[str, Any]) -> RegistryChange:
    """Write one audit row for an admin change of `obj` (a registry object or a Project)."""
    project = obj if isinstance(obj, Project) else obj.project
    return RegistryChange.objects.create(
        project=project if project.pk else None,
        project_name=project.name,
        object_type=obj.resource_type,
        object_name=obj.name,
        action=action,
        diff=diff,
        user=user if getattr(user, "pk", None) else None,
        actor=ACTOR,
    )


def bump_versions(project_ids: Iterable[int | None]) -> None:
    """Tell registry caches their copy is stale (DESIGN.md, scale-out): version += 1."""
    ids = {pk for pk in project_ids if pk is not None}
    if ids:
        Project.objects.filter(pk__in=ids).update(version=F("version") + 1, updated_at=timezone.now())
        search_index.projects_changed(ids)  # after commit (issue 7: the search index)
