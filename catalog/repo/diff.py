"""The plan: a name-keyed diff of canonical dicts, per type, in apply order.

Creations and updates run in dependency order (project, entities, batch sources,
push sources, views, on-demand views, services, permissions); deletions run after
them in reverse order, so nothing is deleted while something still points at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .spec import DATA_SOURCE, OBJECT_TYPES, PROJECT, TYPE_WORDS

CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"
_VERBS = {CREATE: "Created", UPDATE: "Updated", DELETE: "Deleted", UNCHANGED: "Unchanged"}


@dataclass
class Change:
    """One object's transition. `diff` is {field: (old, new)} for updates; `old`/`new`
    are the full canonical dicts (None where the object does not exist)."""

    action: str
    object_type: str
    name: str
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def record(self) -> dict[str, Any]:
        """What RegistryChange.diff stores: [old, new] per field, or the whole definition."""
        if self.action == UPDATE:
            return {k: [old, new] for k, (old, new) in self.diff.items()}
        return dict(self.new if self.action == CREATE else self.old or {})

    def __str__(self) -> str:
        lines = [f"{_VERBS[self.action]} {TYPE_WORDS[self.object_type]} {self.name}"]
        for key, (old, new) in self.diff.items():
            lines.append(f"  {key}: {_describe_change(key, old, new)}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value and value.strip() == value and "\n" not in value else json.dumps(value)
    return json.dumps(value, sort_keys=True, default=str)


def _describe_change(key: str, old: Any, new: Any) -> str:
    """`old -> new`; a schema change is spelled per field so long views stay readable."""
    if key == "schema" and isinstance(old, list) and isinstance(new, list):
        before = {f["name"]: f for f in old}
        after = {f["name"]: f for f in new}
        parts = [f"+{n} ({after[n]['dtype']})" for n in after if n not in before]
        parts += [f"-{n}" for n in before if n not in after]
        for n in after:
            if n in before:
                parts += [
                    f"{n}.{attr}: {_show(before[n][attr])} -> {_show(after[n][attr])}"
                    for attr in ("dtype", "description", "tags")
                    if before[n].get(attr) != after[n].get(attr)
                ]
        if [n for n in after if n in before] != [n for n in before if n in after]:
            parts.append("order: " + ", ".join(after))
        if parts:
            return "; ".join(parts)
    return f"{_show(old)} -> {_show(new)}"


def diff_dicts(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Field-by-field differences, in the new dict's key order."""
    keys = list(new) + [k for k in old if k not in new]
    return {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)}


def diff_object(object_type: str, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Change:
    if old is None and new is None:
        raise ValueError("nothing to diff")
    if old is None:
        return Change(CREATE, object_type, name, None, new)
    if new is None:
        return Change(DELETE, object_type, name, old, None)
    diff = diff_dicts(old, new)
    return Change(UPDATE if diff else UNCHANGED, object_type, name, old, new, diff)


@dataclass
class Plan:
    """The changes applying a repo makes to one project, in the order they run."""

    project: str
    changes: list[Change] = field(default_factory=list)
    elapsed: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self):
        return iter(self.changes)

    def by_action(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def created(self) -> list[Change]:
        return self.by_action(CREATE)

    @property
    def updated(self) -> list[Change]:
        return self.by_action(UPDATE)

    @property
    def deleted(self) -> list[Change]:
        return self.by_action(DELETE)

    def __str__(self) -> str:
        if not self.changes:
            return "No changes to registry"
        return "\n".join(str(c) for c in self.changes)


def _is_push(d: dict[str, Any] | None) -> bool:
    return bool(d) and d.get("kind") == "push"


def compute_plan(
    project: str, current: dict[str, dict[str, dict[str, Any]]], wanted: dict[str, dict[str, dict[str, Any]]]
) -> Plan:
    """Diff two states ({type: {name: canonical}}) of one project into an ordered plan."""
    upserts: list[Change] = []
    deletes: list[Change] = []
    for object_type in OBJECT_TYPES:
        old_objects, new_objects = current.get(object_type, {}), wanted.get(object_type, {})
        changes = [diff_object(object_type, n, old_objects.get(n), d) for n, d in sorted(new_objects.items())]
        changes = [c for c in changes if c.action != UNCHANGED]
        if object_type == DATA_SOURCE:  # batch sources before the push sources that point at them
            changes.sort(key=lambda c: _is_push(c.new))
        upserts += changes
        if object_type != PROJECT:
            gone = [
                diff_object(object_type, n, d, None) for n, d in sorted(old_objects.items()) if n not in new_objects
            ]
            if object_type == DATA_SOURCE:  # push sources go before their batch sources
                gone.sort(key=lambda c: not _is_push(c.old))
            deletes = gone + deletes
    return Plan(project, upserts + deletes)
