"""What a feature repo holds once loaded: object specs by type, each with its file.

The object types plan/apply manage, in dependency order (an object only refers to
types before it). SavedDatasets are not managed by apply, as in Feast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ValidationIssue

PROJECT = "project"
ENTITY = "entity"
DATA_SOURCE = "data_source"
FEATURE_VIEW = "feature_view"
ON_DEMAND_FEATURE_VIEW = "on_demand_feature_view"
FEATURE_SERVICE = "feature_service"
PERMISSION = "permission"

# Creation order; deletion runs in reverse.
OBJECT_TYPES = [PROJECT, ENTITY, DATA_SOURCE, FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW, FEATURE_SERVICE, PERMISSION]

# YAML section -> object type.
SECTIONS = {
    "project": PROJECT,
    "entities": ENTITY,
    "data_sources": DATA_SOURCE,
    "feature_views": FEATURE_VIEW,
    "on_demand_feature_views": ON_DEMAND_FEATURE_VIEW,
    "feature_services": FEATURE_SERVICE,
    "permissions": PERMISSION,
}

# How plan output names each type (Feast's words).
TYPE_WORDS = {
    PROJECT: "project",
    ENTITY: "entity",
    DATA_SOURCE: "data source",
    FEATURE_VIEW: "feature view",
    ON_DEMAND_FEATURE_VIEW: "on demand feature view",
    FEATURE_SERVICE: "feature service",
    PERMISSION: "permission",
}


@dataclass
class ObjectSpec:
    """One object as written (`raw`) and normalised (`canonical`, None when invalid;
    `draft`, the best-effort normalisation even when invalid)."""

    object_type: str
    name: str
    raw: dict[str, Any]
    file: str = ""
    canonical: dict[str, Any] | None = None
    draft: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.draft is None:
            self.draft = self.canonical


@dataclass
class RepoDefinition:
    """A loaded feature repo. `errors` holds every problem found while loading,
    normalising and cross-checking; plan/apply refuse to run while it is non-empty."""

    path: Path | None
    project: ObjectSpec | None = None
    objects: dict[str, dict[str, ObjectSpec]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES[1:]})
    errors: list[ValidationIssue] = field(default_factory=list)

    @property
    def project_name(self) -> str:
        return self.project.name if self.project else ""

    def canonical_state(self) -> dict[str, dict[str, dict[str, Any]]]:
        """{type: {name: canonical dict}}, the shape the registry state is compared in."""
        state: dict[str, dict[str, dict[str, Any]]] = {PROJECT: {}}
        if self.project and self.project.canonical is not None:
            state[PROJECT][self.project.name] = self.project.canonical
        for object_type, specs in self.objects.items():
            state[object_type] = {name: s.canonical for name, s in specs.items() if s.canonical is not None}
        return state

    def count(self) -> int:
        return sum(len(specs) for specs in self.objects.values())
