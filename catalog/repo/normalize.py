"""YAML object -> canonical dict, one normaliser per type.

The canonical dict has the same keys as the (normalised) YAML with every default
filled in: ttl in integer seconds, actions expanded, resource types normalised,
references by name, schema as [{name, dtype, description, tags}], file paths
absolute. `catalog.repo.canonical` builds the same dict from a database row, so the
plan compares the two field by field.

Checks here only need the object itself (and the file system / Python path); checks
between objects live in `references`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from access.actions import expand_actions
from access.pattern_safety import backtracking_risk
from access.resources import RESOURCE_TYPES, normalize_resource_type
from catalog.models.projects import project_name_validator
from catalog.transformations import ExpressionError, compile_expression

from .errors import ValidationIssue
from .fields import ObjectReader, parse_ttl, suggest
from .spec import (
    DATA_SOURCE,
    ENTITY,
    FEATURE_SERVICE,
    FEATURE_VIEW,
    ON_DEMAND_FEATURE_VIEW,
    PERMISSION,
    PROJECT,
)

COMMON = ["name", "description", "owner", "tags"]
SOURCE_KINDS = ["file", "postgres", "push", "request"]
SOURCE_FIELDS = {
    "file": ["path", "timestamp_field", "created_timestamp_column", "field_mapping"],
    "postgres": ["table", "query", "dsn_setting", "timestamp_field", "created_timestamp_column", "field_mapping"],
    "push": ["batch_source"],
    "request": ["schema"],
}
DEFAULT_DSN_SETTING = "LARDER_OFFLINE_DSN"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


class Context:
    """Where relative paths are resolved, and whether python functions are imported."""

    def __init__(self, base_dir: Path | None, file: str = "", check_functions: bool = True):
        self.base_dir = base_dir
        self.file = file
        self.check_functions = check_functions


def normalize_project(raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]) -> dict[str, Any] | None:
    r = ObjectReader(PROJECT, raw, ctx.file, errors)
    r.only(COMMON)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        r.error("name", "name is required")
    else:
        try:
            project_name_validator(name)
        except Exception:
            r.error(
                "name", f"bad project name {name!r}: use letters, digits, '_' and '-', starting with a letter or digit"
            )
        if len(name) > 255:
            r.error("name", "bad project name: longer than 255 characters")
    out = {"name": name, **r.common()}
    return out


def normalize_entity(raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]) -> dict[str, Any] | None:
    r = ObjectReader(ENTITY, raw, ctx.file, errors)
    r.only([*COMMON, "join_keys", "join_key", "value_type"])
    name = r.name_field()
    if "join_key" in raw and "join_keys" in raw:
        r.error("join_key", "give join_keys or join_key, not both")
    key_field = "join_key" if "join_key" in raw else "join_keys"
    join_keys = r.string_list(key_field, default=[name] if name else [], names=True)
    if not join_keys:
        r.error(key_field, "an entity needs at least one join key")
    value_type = r.dtype("value_type", raw["value_type"]) if raw.get("value_type") not in (None, "") else ""
    out = {"name": name, "join_keys": join_keys, "value_type": value_type, **r.common()}
    return out


def _resolve_path(r: ObjectReader, value: str, ctx: Context) -> str:
    if "://" in value:
        r.error("path", f"{value!r}: only local Parquet files and folders are supported")
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        if ctx.base_dir is None:
            r.error("path", f"{value!r} is relative but there is no folder to resolve it against")
            return value
        path = ctx.base_dir / path
    resolved = path.resolve()
    if not resolved.exists():
        r.error("path", f"file source path {value!r} does not exist (looked for {resolved})")
    return str(resolved)


def normalize_data_source(raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]) -> dict[str, Any] | None:
    r = ObjectReader(DATA_SOURCE, raw, ctx.file, errors)
    name = r.name_field()
    kind = raw.get("kind")
    if kind not in SOURCE_KINDS:
        r.error("kind", f"bad kind {kind!r}{suggest(kind, SOURCE_KINDS)} (expected one of {', '.join(SOURCE_KINDS)})")
        r.only([*COMMON, "kind", *sorted({f for fs in SOURCE_FIELDS.values() for f in fs})])
        return None  # no draft: what the other fields mean depends on the kind
    r.only([*COMMON, "kind", *SOURCE_FIELDS[kind]], context=f"a {kind} source")
    out: dict[str, Any] = {"name": name, "kind": kind}
    if kind == "file":
        path = r.string("path", required=True)
        out["path"] = _resolve_path(r, path, ctx) if path else ""
    elif kind == "postgres":
        table, query = r.string("table"), r.string("query")
        if bool(table) == bool(query):
            r.error("table", "a postgres source needs exactly one of table or query")
        dsn_setting = r.string("dsn_setting", default=DEFAULT_DSN_SETTING)
        if not _ENV_NAME.match(dsn_setting):
            r.error(
                "dsn_setting",
                "must name the environment variable that holds the DSN (like LARDER_OFFLINE_DSN), never the DSN itself",
            )
            dsn_setting = ""
        out.update({"table": table, "query": query, "dsn_setting": dsn_setting})
    elif kind == "push":
        out["batch_source"] = r.string("batch_source", required=True)
    else:
        out["schema"] = r.schema("schema")
    if kind in ("file", "postgres"):
        out["timestamp_field"] = r.string("timestamp_field", required=True)
        out["created_timestamp_column"] = r.string("created_timestamp_column")
        out["field_mapping"] = r.str_mapping("field_mapping")
        if out["timestamp_field"] and out["timestamp_field"] == out["created_timestamp_column"]:
            r.error("created_timestamp_column", "must differ from timestamp_field")
    out.update(r.common())
    return out


def normalize_feature_view(raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]) -> dict[str, Any] | None:
    r = ObjectReader(FEATURE_VIEW, raw, ctx.file, errors)
    r.only([*COMMON, "entities", "source", "ttl", "online", "offline", "schema", "schedule"])
    name = r.name_field()
    ttl = 0
    try:
        ttl = parse_ttl(raw.get("ttl", 0))
    except ValueError as exc:
        r.error("ttl", str(exc))
    out = {
        "name": name,
        "entities": sorted(r.string_list("entities", names=True)),
        "source": r.string("source", required=True),
        "ttl": ttl,
        "online": r.boolean("online", True),
        "offline": r.boolean("offline", False),
        "schema": r.schema("schema"),
        **r.common(),
    }
    if raw.get("schedule") is not None:  # optional; absent from the canonical dict when not given
        from materialization.schedules import normalize_schedule

        try:
            out["schedule"] = normalize_schedule(raw["schedule"])
        except ValueError as exc:
            r.error("schedule", str(exc))
    return out


def import_function(path: str) -> Callable[..., Any]:
    """The callable at dotted `path` (`package.module.function`); ImportError/TypeError otherwise."""
    if not isinstance(path, str) or not _DOTTED.match(path) or any(p.startswith("__") for p in path.split(".")):
        raise ImportError(f"{path!r} is not a dotted path like package.module.function")
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            target: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise ImportError(f"importing {module_name} failed: {exc}") from exc
        except Exception as exc:
            raise ImportError(f"importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
        for attr in parts[split:]:
            if not hasattr(target, attr):
                raise ImportError(f"{module_name} has no attribute {'.'.join(parts[split:])!r}")
            target = getattr(target, attr)
        if not callable(target):
            raise TypeError(f"{path} is not callable")
        return target
    raise ImportError(f"no module found for {path!r}")


def normalize_on_demand_feature_view(
    raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]
) -> dict[str, Any] | None:
    r = ObjectReader(ON_DEMAND_FEATURE_VIEW, raw, ctx.file, errors)
    mode = raw.get("mode", "expression")
    extra = {"expression": "expressions", "python": "function"}.get(mode, "")
    r.only([*COMMON, "sources", "mode", "schema", *([extra] if extra else ["expressions", "function"])], f"{mode} mode")
    name = r.name_field()
    sources = r.string_list("sources", names=True)
    if not sources:
        r.error("sources", "an on-demand view needs at least one source (feature views or request sources)")
    schema = r.schema("schema")
    out: dict[str, Any] = {"name": name, "sources": sorted(sources), "mode": mode, "schema": schema}
    if mode == "expression":
        out["expressions"] = _expressions(r, raw.get("expressions"), schema)
    elif mode == "python":
        function = r.string("function", required=True)
        if function and ctx.check_functions:
            try:
                import_function(function)
            except (ImportError, TypeError) as exc:
                r.error("function", f"{function!r} is not an importable function: {exc}")
        out["function"] = function
    else:
        r.error("mode", f"bad mode {mode!r} (expected expression or python)")
    out.update(r.common())
    return out


def _expressions(r: ObjectReader, value: Any, schema: list[dict[str, Any]]) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        r.error("expressions", "expression mode needs a mapping of output field to expression")
        return {}
    outputs = [f["name"] for f in schema]
    result: dict[str, str] = {}
    for out_name, text in value.items():
        where = f"expressions.{out_name}"
        if out_name not in outputs:
            r.error(where, f"{out_name!r} is not a field of the schema{suggest(out_name, outputs)}")
            continue
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            r.error(where, f"must be an expression string, got {text!r}")
            continue
        try:
            compile_expression(str(text))
        except ExpressionError as exc:
            r.error(where, f"bad expression {str(text)!r}: {exc}")
        result[str(out_name)] = str(text)
    for missing in [o for o in outputs if o not in value]:
        r.error("expressions", f"schema field {missing!r} has no expression")
    return result


def _projection(r: ObjectReader, i: int, item: Any) -> dict[str, Any] | None:
    if isinstance(item, str):  # shorthand: a view name means all its features
        item = {"feature_view": item}
    if not isinstance(item, dict):
        r.error(f"features[{i}]", f"must be a mapping with feature_view, got {item!r}")
        return None
    sub = ObjectReader(FEATURE_SERVICE, item, r.file, r.errors, prefix=f"features[{i}].")
    sub.name = r.name
    sub.only(["feature_view", "features", "alias"])
    projection = {
        "feature_view": sub.string("feature_view", required=True),
        "features": sub.string_list("features", names=True),
        "alias": sub.string("alias"),
    }
    r.failed = r.failed or sub.failed
    return projection


def normalize_feature_service(
    raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]
) -> dict[str, Any] | None:
    r = ObjectReader(FEATURE_SERVICE, raw, ctx.file, errors)
    r.only([*COMMON, "features"])
    name = r.name_field()
    items = raw.get("features")
    projections = []
    if not isinstance(items, list) or not items:
        r.error("features", "a feature service needs a list of features (feature_view, features, alias)")
    else:
        projections = [p for i, item in enumerate(items) if (p := _projection(r, i, item)) is not None]
    out = {"name": name, "features": projections, **r.common()}
    return out


def normalize_permission(raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]) -> dict[str, Any] | None:
    r = ObjectReader(PERMISSION, raw, ctx.file, errors)
    r.only([*COMMON, "types", "name_patterns", "required_tags", "actions", "roles", "groups"])
    name = r.name_field()
    types: list[str] = []
    for t in r.string_list("types"):
        try:
            types.append(normalize_resource_type(t))
        except ValueError as exc:
            r.error("types", str(exc))
    patterns = r.string_list("name_patterns")
    for pattern in patterns:
        try:
            re.compile(pattern.strip())
        except re.error as exc:
            r.error("name_patterns", f"bad regular expression {pattern!r}: {exc}")
            continue
        risk = backtracking_risk(pattern)
        if risk:
            r.error("name_patterns", f"regular expression {pattern!r} refused: {risk}")
    actions: list[str] = []
    raw_actions = r.string_list("actions")
    if not raw_actions:
        r.error("actions", "actions is required (CREATE DESCRIBE UPDATE DELETE READ_ONLINE READ_OFFLINE ... or ALL)")
    try:
        actions = expand_actions(raw_actions)
    except ValueError as exc:
        r.error("actions", str(exc))
    roles, groups = r.string_list("roles"), r.string_list("groups")
    if not roles and not groups:
        r.error("roles", "a permission needs at least one role or group in its policy")
    out = {
        "name": name,
        "types": [t for t in RESOURCE_TYPES if t in types],
        "name_patterns": [p.strip() for p in patterns],
        "required_tags": r.str_mapping("required_tags"),
        "actions": actions,
        "roles": roles,
        "groups": groups,
        **r.common(),
    }
    return out


NORMALIZERS = {
    PROJECT: normalize_project,
    ENTITY: normalize_entity,
    DATA_SOURCE: normalize_data_source,
    FEATURE_VIEW: normalize_feature_view,
    ON_DEMAND_FEATURE_VIEW: normalize_on_demand_feature_view,
    FEATURE_SERVICE: normalize_feature_service,
    PERMISSION: normalize_permission,
}


def normalize_draft(
    object_type: str, raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(canonical, draft): the canonical dict, None when invalid, and a best-effort
    draft of it even when invalid, so checks between objects still report the
    references of an object with other problems."""
    before = len(errors)
    draft = NORMALIZERS[object_type](raw, ctx, errors)
    return (draft if len(errors) == before else None), draft


def normalize(
    object_type: str, raw: dict[str, Any], ctx: Context, errors: list[ValidationIssue]
) -> dict[str, Any] | None:
    """Canonical dict of one YAML object, or None (with `errors` extended) when invalid."""
    return normalize_draft(object_type, raw, ctx, errors)[0]
