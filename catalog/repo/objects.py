"""One object at a time, for the REST API: upsert or delete, validated against the
rest of the project's registry, recorded in the change history like an apply.

These functions do not authorize (the API view calls access.policy.authorize
first), with one exception the issue asks for: a python-mode on-demand view names
server code to run, so only a superuser may apply one here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from access.resources import normalize_resource_type
from catalog.models import Project, SavedDataset

from .applier import lock_project, record_changes
from .canonical import load_state
from .diff import DELETE, UNCHANGED, Change, Plan, diff_object
from .errors import ObjectNotFound, PythonTransformationForbidden, RepoValidationError, ValidationIssue
from .normalize import Context, normalize
from .references import check_references, referrers
from .spec import OBJECT_TYPES, ON_DEMAND_FEATURE_VIEW, PROJECT, TYPE_WORDS, ObjectSpec
from .writer import Writer


def _object_type(raw: str) -> str:
    try:
        object_type = normalize_resource_type(raw)
    except ValueError as exc:
        raise RepoValidationError.single(str(exc), field="object_type") from exc
    if object_type not in OBJECT_TYPES:
        raise RepoValidationError.single(f"{object_type} objects are not managed by apply", field="object_type")
    return object_type


def _is_superuser(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_superuser", False))


def _as_specs(dicts: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, ObjectSpec]]:
    return {
        t: {name: ObjectSpec(t, name, {}, "", d) for name, d in objects.items()}
        for t, objects in dicts.items()
        if t != PROJECT
    }


def _locked_project(project_name: str) -> Project:
    project = Project.objects.select_for_update().filter(name=project_name).first()
    if project is None:
        raise ObjectNotFound.single(f"unknown project {project_name!r}", object_type=PROJECT, object_name=project_name)
    return project


def apply_object(project_name: str, object_type: str, spec: dict[str, Any], user: Any, actor: str = "api") -> Change:
    """Create or replace one object of `project_name` from its YAML-shaped dict.

    `spec` is the whole definition (omitted fields take their defaults). On a new
    project name with object_type "project" the project is created. Raises
    RepoValidationError (nothing written) when the object is invalid or would break
    another object of the project, ObjectNotFound for an unknown project, and
    PythonTransformationForbidden for a python-mode view from a non-superuser.
    Returns the Change (action "unchanged" when the object already matched).
    """
    object_type = _object_type(object_type)
    if not isinstance(spec, dict):
        raise RepoValidationError.single("the object must be a mapping", object_type=object_type)
    if object_type == ON_DEMAND_FEATURE_VIEW and spec.get("mode") == "python" and not _is_superuser(user):
        raise PythonTransformationForbidden(
            "applying a python-mode on-demand feature view through the API requires a superuser"
        )
    if object_type == PROJECT:
        if spec.get("name", project_name) != project_name:
            raise RepoValidationError.single(
                f"name {spec.get('name')!r} differs from the project in the URL {project_name!r}",
                object_type=PROJECT,
                object_name=project_name,
                field="name",
            )
        spec = {**spec, "name": project_name}
    errors: list[ValidationIssue] = []
    new = normalize(object_type, spec, Context(settings.LARDER_DATA_DIR), errors)
    if errors or new is None:
        raise RepoValidationError(errors)
    name = new["name"]
    with transaction.atomic():
        if object_type == PROJECT:
            project, created = lock_project(project_name, new)
        else:
            project, created = _locked_project(project_name), False
        state = load_state(project)
        current = dict(state.dicts)
        if created:
            current[PROJECT] = {}
        change = diff_object(object_type, name, current[object_type].get(name), new)
        if change.action == UNCHANGED:
            return change
        if object_type != PROJECT:
            before = {str(e) for e in check_references(_as_specs(current))}
            after = _as_specs({**current, object_type: {**current[object_type], name: new}})
            broken = [e for e in check_references(after) if str(e) not in before]
            if broken:
                raise RepoValidationError(broken)
        plan = Plan(project_name, [change])
        Writer(project, state).run(plan)
        record_changes(project, plan, user, actor)
    return change


def delete_object(project_name: str, object_type: str, name: str, user: Any, actor: str = "api") -> Change:
    """Delete one object; refuse (RepoValidationError) while others still refer to it.

    Deleting a project is refused while it still holds objects."""
    object_type = _object_type(object_type)
    with transaction.atomic():
        project = _locked_project(project_name)
        state = load_state(project)
        if object_type == PROJECT:
            return _delete_project(project, state.dicts, name, user, actor)
        old = state.dicts[object_type].get(name)
        if old is None:
            raise ObjectNotFound.single(
                f"no {TYPE_WORDS[object_type]} {name!r} in project {project_name!r}",
                object_type=object_type,
                object_name=name,
            )
        users = referrers(_as_specs(state.dicts), object_type, name)
        if users:
            names = ", ".join(f"{t} {n!r} ({f})" for t, n, f in users)
            raise RepoValidationError.single(
                f"still used by {names}; change or delete those first", object_type=object_type, object_name=name
            )
        change = Change(DELETE, object_type, name, old, None)
        plan = Plan(project_name, [change])
        Writer(project, state).run(plan)
        record_changes(project, plan, user, actor)
    return change


def _delete_project(project: Project, dicts: dict, name: str, user: Any, actor: str) -> Change:
    if name != project.name:
        raise RepoValidationError.single(
            f"name {name!r} differs from the project {project.name!r}", object_type=PROJECT, object_name=name
        )
    held = [f"{len(dicts[t])} {TYPE_WORDS[t]}(s)" for t in OBJECT_TYPES[1:] if dicts[t]]
    datasets = SavedDataset.objects.filter(project=project).count()
    if datasets:
        held.append(f"{datasets} saved dataset(s)")
    if held:
        raise RepoValidationError.single(
            f"project still holds {', '.join(held)}; delete them first", object_type=PROJECT, object_name=name
        )
    change = Change(DELETE, PROJECT, name, dicts[PROJECT][name], None)
    record_changes(project, Plan(name, [change]), user, actor)
    project.delete()
    return change
