"""plan and apply of a whole feature repo.

apply runs in ONE transaction: it locks the project row (creating it first if
needed), reads the current state and computes the plan *inside* the lock, so two
concurrent applies of one project run one after the other and the second sees the
first's result. Nothing is written when the repo is invalid.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from catalog import search_index
from catalog.models import Project, RegistryChange

from .canonical import load_state
from .diff import Plan, compute_plan
from .errors import RepoValidationError
from .spec import PROJECT, RepoDefinition
from .writer import Writer


def _require_valid(definition: RepoDefinition) -> None:
    if definition.errors:
        raise RepoValidationError(definition.errors)
    if definition.project is None or definition.project.canonical is None:
        raise RepoValidationError.single("no valid project section", object_type=PROJECT)


def plan(definition: RepoDefinition) -> Plan:
    """What applying `definition` would change (a dry run: nothing is written)."""
    _require_valid(definition)
    started = time.perf_counter()
    project = Project.objects.filter(name=definition.project_name).first()
    result = compute_plan(definition.project_name, load_state(project).dicts, definition.canonical_state())
    result.elapsed = time.perf_counter() - started
    return result


def lock_project(name: str, values: dict[str, Any]) -> tuple[Project, bool]:
    """The project row, locked FOR UPDATE until the transaction ends; created (with
    `values`) when missing. Returns (project, created). Two transactions creating the
    same project race on the unique name: the loser re-reads the winner's row, which
    also makes it wait for the winner to commit."""
    project = Project.objects.select_for_update().filter(name=name).first()
    if project is not None:
        return project, False
    try:
        with transaction.atomic():  # a savepoint, so losing the race leaves the outer transaction usable
            project = Project.objects.create(
                name=name,
                description=values.get("description", ""),
                owner=values.get("owner", ""),
                tags=values.get("tags", {}),
            )
        return project, True
    except IntegrityError:
        return Project.objects.select_for_update().get(name=name), False


def user_or_none(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) and user.pk else None


def record_changes(project: Project, result: Plan, user: Any, actor: str) -> None:
    """One RegistryChange per changed object, and one version bump for the lot."""
    if not result.changes:
        return
    user = user_or_none(user)
    RegistryChange.objects.bulk_create(
        [
            RegistryChange(
                project=project,
                project_name=project.name,
                object_type=c.object_type,
                object_name=c.name,
                action=c.action,
                diff=c.record,
                user=user,
                actor=actor,
            )
            for c in result.changes
        ]
    )
    Project.objects.filter(pk=project.pk).update(version=F("version") + 1, updated_at=timezone.now())
    search_index.projects_changed([project.pk])  # after commit (issue 7: the search index)


def apply(definition: RepoDefinition, user: Any = None, actor: str = "cli") -> Plan:
    """Apply `definition` to its project and return the plan that was applied.

    Objects of the project that the repo no longer defines are deleted; existing
    objects are updated in place; re-applying an unchanged repo writes nothing.
    """
    _require_valid(definition)
    started = time.perf_counter()
    wanted = definition.canonical_state()
    name = definition.project_name
    with transaction.atomic():
        project, created = lock_project(name, wanted[PROJECT][name])
        state = load_state(project)
        current = dict(state.dicts)
        if created:
            current[PROJECT] = {}
        result = compute_plan(name, current, wanted)
        Writer(project, state).run(result)
        record_changes(project, result, user, actor)
    result.elapsed = time.perf_counter() - started
    return result
