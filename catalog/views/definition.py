"""An object's definition as feature-repo YAML, and its change history, for the viewer.

The YAML is catalog.repo.canonical's dict in docs/feature-repo.md's format (the
section the object would sit in, empty optional keys left out, ttl as `1d`), so it can
be pasted into a repo. References to objects the viewer may not DESCRIBE are replaced
by HIDDEN, here and in the history's diffs: a definition must not leak what the lists
and the lineage hide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from catalog.models import RegistryChange
from catalog.repo.canonical import canonical

HIDDEN = "(hidden)"
SECTIONS = {
    "project": "project",
    "entity": "entities",
    "data_source": "data_sources",
    "feature_view": "feature_views",
    "on_demand_feature_view": "on_demand_feature_views",
    "feature_service": "feature_services",
    "permission": "permissions",
    "saved_dataset": "saved_datasets",
}
OPTIONAL = {"description", "owner", "tags", "field_mapping", "created_timestamp_column", "alias", "groups", "query"}
TTL_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60))
HISTORY_LIMIT = 50

# Visible names by resource type: {"feature_view": {"a", "b"}, ...}
Visible = dict[str, set[str]]


class _Dumper(yaml.SafeDumper):
    """Block style, list items indented under their key as docs/feature-repo.md writes
    them, short lists of scalars on one line (`entities: [driver]`)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> Any:
    flow = bool(data) and len(data) <= 8 and all(isinstance(x, str | int | float | bool) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> Any:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def format_ttl(seconds: int) -> str | int:
    """86400 -> "1d" (feature-repo spelling); 0 stays 0 (unlimited)."""
    if not seconds:
        return 0
    for unit, size in TTL_UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _prune(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if key in OPTIONAL and value in ("", {}, [], None):
            continue
        if key == "schema" and isinstance(value, list):
            value = [_prune(f) if isinstance(f, dict) else f for f in value]
        if key == "features" and isinstance(value, list):  # a service's projections: [] means all features
            value = [
                {k: v for k, v in _prune(p).items() if not (k == "features" and v == [])} if isinstance(p, dict) else p
                for p in value
            ]
        out[key] = value
    return out


def _hide(name: Any, rtypes: tuple[str, ...], visible: Visible) -> Any:
    if not isinstance(name, str) or not name:
        return name
    return name if any(name in visible.get(t, ()) for t in rtypes) else HIDDEN


def redact(rtype: str, d: dict[str, Any], visible: Visible) -> dict[str, Any]:
    """`d` (a canonical dict, or part of one) with hidden references replaced."""
    d = dict(d)
    if rtype == "feature_view":
        if "entities" in d and isinstance(d["entities"], list):
            d["entities"] = [_hide(e, ("entity",), visible) for e in d["entities"]]
        if "source" in d:
            d["source"] = _hide(d["source"], ("data_source",), visible)
    elif rtype == "on_demand_feature_view" and isinstance(d.get("sources"), list):
        d["sources"] = [_hide(s, ("feature_view", "data_source"), visible) for s in d["sources"]]
    elif rtype == "data_source" and "batch_source" in d:
        d["batch_source"] = _hide(d["batch_source"], ("data_source",), visible)
    elif rtype == "feature_service" and isinstance(d.get("features"), list):
        views = ("feature_view", "on_demand_feature_view")
        d["features"] = [
            {**p, "feature_view": _hide(p.get("feature_view"), views, visible)} if isinstance(p, dict) else p
            for p in d["features"]
        ]
    elif rtype == "saved_dataset":
        if "feature_service" in d:
            d["feature_service"] = _hide(d["feature_service"], ("feature_service",), visible)
        if isinstance(d.get("features"), list):
            d["features"] = [hide_feature_ref(ref, visible) for ref in d["features"]]
    return d


def hide_feature_ref(ref: Any, visible: Visible) -> Any:
    """ "view:feature" with the view hidden when the viewer may not see it."""
    view = str(ref).partition(":")[0]
    if _hide(view, ("feature_view", "on_demand_feature_view"), visible) == HIDDEN:
        return HIDDEN
    return ref


def saved_dataset_dict(sd: Any) -> dict[str, Any]:
    """Saved datasets are not applied from repos (as in Feast); their stored fields."""
    return {
        "name": sd.name,
        "features": list(sd.features or []),
        "join_keys": list(sd.join_keys or []),
        "full_feature_names": sd.full_feature_names,
        "feature_service": sd.feature_service.name if sd.feature_service_id else "",
        "storage": sd.storage,
        "description": sd.description,
        "owner": sd.owner,
        "tags": dict(sd.tags or {}),
    }


def definition_dict(obj: Any) -> dict[str, Any]:
    if obj.resource_type == "saved_dataset":
        return saved_dataset_dict(obj)
    return canonical(obj)


def to_yaml(rtype: str, d: dict[str, Any]) -> str:
    """One object as the YAML of its repo section."""
    d = _prune(d)
    if "ttl" in d and isinstance(d["ttl"], int):
        d["ttl"] = format_ttl(d["ttl"])
    section = SECTIONS.get(rtype, rtype)
    document = {section: d} if rtype == "project" else {section: [d]}
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def definition_yaml(obj: Any, visible: Visible) -> str:
    return to_yaml(obj.resource_type, redact(obj.resource_type, definition_dict(obj), visible))


def short_yaml(value: Any) -> str:
    """A value of a diff, compact: scalars as they are, structures as flow YAML."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return yaml.dump(value, Dumper=yaml.SafeDumper, default_flow_style=None, sort_keys=False, width=90).strip()


@dataclass
class HistoryEntry:
    when: datetime
    action: str
    action_label: str
    who: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (field, old, new) for updates
    definition: str = ""  # the YAML, for creations and deletions


def _who(change: RegistryChange) -> str:
    if change.user_id:
        return change.user.get_username()
    return change.actor or "—"


def history(
    project_name: str, rtype: str, name: str, visible: Visible, limit: int = HISTORY_LIMIT
) -> list[HistoryEntry]:
    """The object's RegistryChange rows, newest first, as per-field old -> new diffs."""
    changes = (
        RegistryChange.objects.filter(project_name=project_name, object_type=rtype, object_name=name)
        .select_related("user")
        .order_by("-created_at", "-id")[:limit]
    )
    entries = []
    for change in changes:
        entry = HistoryEntry(change.created_at, change.action, change.get_action_display(), _who(change))
        diff = change.diff if isinstance(change.diff, dict) else {}
        if change.action == RegistryChange.Action.UPDATE:
            old = redact(rtype, {k: v[0] for k, v in diff.items() if _pair(v)}, visible)
            new = redact(rtype, {k: v[1] for k, v in diff.items() if _pair(v)}, visible)
            for key in old:
                if key == "ttl" and all(isinstance(v, int | None) for v in (old[key], new[key])):
                    entry.fields.append((key, str(format_ttl(old[key] or 0)), str(format_ttl(new[key] or 0))))
                else:
                    entry.fields.append((key, short_yaml(old[key]), short_yaml(new[key])))
        elif diff:
            entry.definition = to_yaml(rtype, redact(rtype, diff, visible))
        entries.append(entry)
    return entries


def _pair(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2
