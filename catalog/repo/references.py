"""Checks between objects: every reference resolves to an object of the right kind.

They run over a *state* - `{type: {name: ObjectSpec}}` with canonical dicts - so the
same checks serve a whole repo (`apply`) and the registry with one object swapped in
(`apply_object`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from catalog.transformations import ExpressionError, compile_expression

from .errors import ValidationIssue
from .fields import suggest
from .spec import DATA_SOURCE, ENTITY, FEATURE_SERVICE, FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW, ObjectSpec

State = dict[str, dict[str, ObjectSpec]]

VIEW_SOURCE_KINDS = ("file", "postgres", "push")
BATCH_KINDS = ("file", "postgres")


def _issue(spec: ObjectSpec, field: str, message: str) -> ValidationIssue:
    return ValidationIssue(spec.file, spec.object_type, spec.name, field, message)


def _defs(state: State, object_type: str) -> Iterator[tuple[ObjectSpec, dict[str, Any]]]:
    """The objects of a type with their dict; invalid objects give their draft, so their
    own references are still checked (references *to* them use `.canonical` only)."""
    for spec in state.get(object_type, {}).values():
        d = spec.canonical if spec.canonical is not None else spec.draft
        if d is not None:
            yield spec, d


def _where(spec: ObjectSpec) -> str:
    return f" in {spec.file}" if spec.file else ""


def _case_duplicates(state: State, types: tuple[str, ...], what: str) -> list[ValidationIssue]:
    """Feast: feature view names (all kinds) and data source names are unique ignoring case."""
    errors = []
    seen: dict[str, ObjectSpec] = {}
    for object_type in types:
        for spec in state.get(object_type, {}).values():
            key = spec.name.lower()
            other = seen.get(key)
            if other is None:
                seen[key] = spec
            else:
                errors.append(
                    _issue(
                        spec,
                        "name",
                        f"{what} names must be unique ignoring case: clashes with {other.object_type} "
                        f"{other.name!r}{_where(other)}",
                    )
                )
    return errors


def _effective_batch(state: State, source: dict[str, Any]) -> dict[str, Any] | None:
    if source.get("kind") == "push":
        batch = state.get(DATA_SOURCE, {}).get(source.get("batch_source", ""))
        return batch.canonical if batch else None
    return source


def _check_sources(state: State) -> list[ValidationIssue]:
    errors = []
    sources = state.get(DATA_SOURCE, {})
    for spec, d in _defs(state, DATA_SOURCE):
        if d["kind"] != "push" or not d["batch_source"]:  # an empty name is reported by the normaliser
            continue
        batch = sources.get(d["batch_source"])
        if batch is None:
            errors.append(
                _issue(
                    spec,
                    "batch_source",
                    f"unknown data source {d['batch_source']!r}{suggest(d['batch_source'], sources)}",
                )
            )
        elif batch.canonical is not None and batch.canonical["kind"] not in BATCH_KINDS:
            errors.append(
                _issue(
                    spec,
                    "batch_source",
                    f"{d['batch_source']!r} is a {batch.canonical['kind']} source; a push source's batch_source "
                    "must be a file or postgres source",
                )
            )
    return errors


def _check_feature_views(state: State) -> list[ValidationIssue]:
    errors = []
    entities, sources = state.get(ENTITY, {}), state.get(DATA_SOURCE, {})
    for spec, d in _defs(state, FEATURE_VIEW):
        join_keys: dict[str, str] = {}
        for entity_name in d["entities"]:
            entity = entities.get(entity_name)
            if entity is None:
                errors.append(
                    _issue(spec, "entities", f"unknown entity {entity_name!r}{suggest(entity_name, entities)}")
                )
            elif entity.canonical is not None:
                join_keys.update({k: entity_name for k in entity.canonical["join_keys"]})
        for f in d["schema"]:
            if f["name"] in join_keys:
                errors.append(
                    _issue(
                        spec,
                        f"schema.{f['name']}",
                        f"{f['name']!r} is the join key of entity {join_keys[f['name']]!r}; join keys are entity "
                        "columns, not features: remove it from the schema",
                    )
                )
        source = sources.get(d["source"])
        if not d["source"]:
            pass  # reported by the normaliser
        elif source is None:
            errors.append(_issue(spec, "source", f"unknown data source {d['source']!r}{suggest(d['source'], sources)}"))
        elif source.canonical is not None:
            kind = source.canonical["kind"]
            if kind not in VIEW_SOURCE_KINDS:
                errors.append(
                    _issue(
                        spec,
                        "source",
                        f"{d['source']!r} is a {kind} source; a feature view reads a file, postgres or push source",
                    )
                )
            batch = _effective_batch(state, source.canonical)
            mapping = (batch or {}).get("field_mapping") or {}
            for f in d["schema"]:
                if f["name"] in mapping:
                    errors.append(
                        _issue(
                            spec,
                            f"schema.{f['name']}",
                            f"{f['name']!r} is a source column renamed by field_mapping to {mapping[f['name']]!r}; "
                            "use the mapped name",
                        )
                    )
    return errors


def on_demand_inputs(state: State, odfv: dict[str, Any]) -> tuple[set[str], list[tuple[str, str]]]:
    """The field names an on-demand view can read, and the (source, problem) pairs found
    (an empty problem: the source is itself invalid, so the inputs are incomplete)."""
    inputs: set[str] = set()
    problems: list[tuple[str, str]] = []
    views, sources, entities = state.get(FEATURE_VIEW, {}), state.get(DATA_SOURCE, {}), state.get(ENTITY, {})
    for name in odfv["sources"]:
        view, source = views.get(name), sources.get(name)
        request = source if source is not None and source.canonical and source.canonical["kind"] == "request" else None
        if view is not None and request is not None:
            problems.append((name, f"{name!r} names both a feature view and a request source; rename one"))
        elif view is not None:
            if view.canonical is None:
                problems.append((name, ""))  # invalid view, reported on its own: inputs unknown
            else:
                inputs.update(f["name"] for f in view.canonical["schema"])
                for entity_name in view.canonical["entities"]:
                    entity = entities.get(entity_name)
                    if entity is not None and entity.canonical is not None:
                        inputs.update(entity.canonical["join_keys"])
        elif request is not None:
            inputs.update(f["name"] for f in request.canonical["schema"])
        elif source is not None and source.canonical is not None:
            problems.append(
                (
                    name,
                    f"{name!r} is a {source.canonical['kind']} data source; on-demand view sources must be feature "
                    "views or request sources",
                )
            )
        else:
            problems.append((name, f"unknown source {name!r}{suggest(name, [*views, *sources])}"))
    return inputs, problems


def _check_on_demand(state: State) -> list[ValidationIssue]:
    errors = []
    for spec, d in _defs(state, ON_DEMAND_FEATURE_VIEW):
        inputs, problems = on_demand_inputs(state, d)
        errors.extend(_issue(spec, "sources", message) for _, message in problems if message)
        if problems or d["mode"] != "expression":
            continue
        for out_name, text in d["expressions"].items():
            try:
                used = compile_expression(text).inputs
            except ExpressionError:
                continue  # reported by the normaliser
            for name in sorted(used - inputs):
                errors.append(
                    _issue(
                        spec,
                        f"expressions.{out_name}",
                        f"{name!r} is not an input of this view{suggest(name, inputs)} "
                        f"(inputs: {', '.join(sorted(inputs))})",
                    )
                )
    return errors


def _check_services(state: State) -> list[ValidationIssue]:
    errors = []
    views, odfvs = state.get(FEATURE_VIEW, {}), state.get(ON_DEMAND_FEATURE_VIEW, {})
    for spec, d in _defs(state, FEATURE_SERVICE):
        names: dict[str, int] = {}
        for i, projection in enumerate(d["features"]):
            view_name = projection["feature_view"]
            view = views.get(view_name) or odfvs.get(view_name)
            where = f"features[{i}]"
            if not view_name:
                continue  # reported by the normaliser
            if view is None:
                errors.append(
                    _issue(
                        spec,
                        f"{where}.feature_view",
                        f"unknown feature view {view_name!r}{suggest(view_name, [*views, *odfvs])}",
                    )
                )
                continue
            if view.canonical is not None:
                available = [f["name"] for f in view.canonical["schema"]]
                for feature in projection["features"]:
                    if feature not in available:
                        errors.append(
                            _issue(
                                spec,
                                f"{where}.features",
                                f"feature view {view_name!r} has no feature {feature!r}{suggest(feature, available)}",
                            )
                        )
            shown = projection["alias"] or view_name
            if shown in names:
                errors.append(
                    _issue(spec, where, f"{shown!r} appears twice (features[{names[shown]}]); give one an alias")
                )
            names[shown] = i
    return errors


def check_references(state: State) -> list[ValidationIssue]:
    """Every problem between the objects of `state` (unknown names, wrong kinds, ...)."""
    return [
        *_case_duplicates(state, (FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW), "feature view"),
        *_case_duplicates(state, (DATA_SOURCE,), "data source"),
        *_check_sources(state),
        *_check_feature_views(state),
        *_check_on_demand(state),
        *_check_services(state),
    ]


def referrers(state: State, object_type: str, name: str) -> list[tuple[str, str, str]]:
    """(type, name, field) of every object in `state` that refers to `object_type` `name`."""
    found: list[tuple[str, str, str]] = []
    if object_type == ENTITY:
        found += [(FEATURE_VIEW, s.name, "entities") for s, d in _defs(state, FEATURE_VIEW) if name in d["entities"]]
    if object_type == DATA_SOURCE:
        found += [
            (DATA_SOURCE, s.name, "batch_source") for s, d in _defs(state, DATA_SOURCE) if d.get("batch_source") == name
        ]
        found += [(FEATURE_VIEW, s.name, "source") for s, d in _defs(state, FEATURE_VIEW) if d["source"] == name]
    shadowed = object_type == DATA_SOURCE and name in state.get(FEATURE_VIEW, {})  # odfv sources prefer views
    if object_type in (DATA_SOURCE, FEATURE_VIEW) and not shadowed:
        found += [
            (ON_DEMAND_FEATURE_VIEW, s.name, "sources")
            for s, d in _defs(state, ON_DEMAND_FEATURE_VIEW)
            if name in d["sources"]
        ]
    if object_type in (FEATURE_VIEW, ON_DEMAND_FEATURE_VIEW):
        found += [
            (FEATURE_SERVICE, s.name, "features")
            for s, d in _defs(state, FEATURE_SERVICE)
            if any(p["feature_view"] == name for p in d["features"])
        ]
    return found
