"""/get-online-features: from a request to Feast's response JSON.

Two steps. `plan` turns the requested feature references (or a feature service) into
a `Plan`: the response columns, the features to read per feature view (including the
inputs of on-demand views), the on-demand views to evaluate and the objects the caller
must be allowed to READ_ONLINE. Plans depend only on the registry, so they are cached
on the registry snapshot (serving.registry_cache). `retrieve` runs a plan for the
request's entity rows: one online-store read per feature view, distinct entity keys
only, fanned back out to the rows; then the on-demand views; then the JSON.

Statuses (Feast's FieldStatus names):
- PRESENT          the entity has a row and the value is not null;
- NULL_VALUE       the stored value, or an on-demand result, is null;
- NOT_FOUND        the entity has no row for the view (value null, timestamp epoch 0);
- OUTSIDE_MAX_AGE  the view has a ttl and the row's event time is older than now - ttl;
                   the value is still returned (as Feast's Go server does; Feast's Python
                   server ignores ttl online, feast#4133).
Join-key columns echo the request's values (PRESENT, epoch 0); on-demand outputs carry
timestamp epoch 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from serving.online import OnlineRow, OnlineStore

from . import odfv as on_demand
from .convert import EPOCH_TEXT, Unconvertible, convert_column, render_column, rfc3339
from .errors import (
    FeatureNameCollision,
    FeatureNotFound,
    FeatureServiceNotFound,
    FeatureViewNotFound,
    InvalidRequest,
    RequestDataNotFound,
    ServingError,
)
from .registry_cache import FeatureViewMeta, GateTarget, RegistrySnapshot

PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"

# gate(target, not_found): raise unless the caller may READ_ONLINE `target`; `not_found`
# makes the error to give when the caller may not even see it (None: always 403).
NotFound = Callable[[], ServingError]
Gate = Callable[[GateTarget, NotFound | None], None]


@dataclass(frozen=True, slots=True)
class Output:
    """One feature column of the response."""

    name: str  # as returned: `feature`, or `<view or alias>__<feature>`
    view: str
    feature: str
    on_demand: bool
    dtype: str


@dataclass(frozen=True, eq=False)
class Plan:
    outputs: tuple[Output, ...]
    reads: dict[str, tuple[str, ...]]  # feature view -> features to read
    on_demand: dict[str, tuple[str, ...]]  # on-demand view -> outputs to compute
    gates: tuple[tuple[GateTarget, NotFound | None], ...]  # in the order they are checked
    join_keys: frozenset[str]  # join keys of every view read (echoed when sent)
    request_fields: dict[str, str]  # request-source field -> dtype, needed by the on-demand views


# -- plan -------------------------------------------------------------------------------------


def plan(
    snap: RegistrySnapshot,
    features: Sequence[str] | None,
    feature_service: str | None,
    full_feature_names: bool,
    gate: Gate,
) -> Plan:
    """The plan of a request, gated: `gate` is called for every object, in order, before
    anything about that object (which features it has) is revealed."""
    key = (tuple(features) if features is not None else None, feature_service, full_feature_names)
    cached = snap.plans.get(key)
    if cached is not None:
        for target, not_found in cached.gates:
            gate(target, not_found)
        return cached
    builder = _PlanBuilder(snap, full_feature_names, gate)
    if feature_service is not None:
        builder.add_service(feature_service)
    else:
        builder.add_refs(features or [])
    result = builder.build()
    snap.remember_plan(key, result)
    return result


class _PlanBuilder:
    def __init__(self, snap: RegistrySnapshot, full_feature_names: bool, gate: Gate) -> None:
        self.snap = snap
        self.full = full_feature_names
        self.gate = gate
        self.gates: list[tuple[GateTarget, NotFound | None]] = []
        self.gated: set[int] = set()
        self.outputs: list[Output] = []
        self.reads: dict[str, list[str]] = {}
        self.on_demand: dict[str, list[str]] = {}

    def check(self, target: GateTarget, not_found: NotFound | None) -> None:
        if id(target) in self.gated:
            return
        self.gate(target, not_found)
        self.gated.add(id(target))
        self.gates.append((target, not_found))

    def add_service(self, name: str) -> None:
        project = self.snap.project.name
        service = self.snap.services.get(name)
        if service is None:
            raise FeatureServiceNotFound(name, project)
        self.check(service.gate, partial(FeatureServiceNotFound, name, project))
        # The service is the grant (Feast's rule): its views are not gated one by one.
        for projection in service.projections:
            for feature in projection.features:
                self.add_feature(projection.view, projection.on_demand, feature, projection.name_to_use)

    def add_refs(self, refs: Sequence[str]) -> None:
        project = self.snap.project.name
        for ref in refs:
            view_name, _, feature = ref.partition(":")
            view = self.snap.feature_views.get(view_name)
            odfv = None if view else self.snap.on_demand_views.get(view_name)
            if view is None and odfv is None:
                raise FeatureViewNotFound(view_name, project)
            self.check((view or odfv).gate, partial(FeatureViewNotFound, view_name, project))
            if odfv is not None:
                # Feast checks the on-demand view's source views too: reading it reveals them.
                for source in odfv.sources:
                    self.check(self.snap.feature_views[source].gate, None)
            known = view.features if view is not None else odfv.outputs
            if feature not in known:
                raise FeatureNotFound(feature, view_name, project)
            self.add_feature(view_name, odfv is not None, feature, view_name)

    def add_feature(self, view_name: str, is_on_demand: bool, feature: str, shown_as: str) -> None:
        name = f"{shown_as}__{feature}" if self.full else feature
        if is_on_demand:
            odfv = self.snap.on_demand_views[view_name]
            dtype = odfv.outputs[feature]
            self.on_demand.setdefault(view_name, [])
            if feature not in self.on_demand[view_name]:
                self.on_demand[view_name].append(feature)
            for source in odfv.sources:  # inputs: every feature of each source view
                self._read(source, list(self.snap.feature_views[source].features))
        else:
            dtype = self.snap.feature_views[view_name].features[feature]
            self._read(view_name, [feature])
        self.outputs.append(Output(name, view_name, feature, is_on_demand, dtype))

    def _read(self, view_name: str, features: list[str]) -> None:
        wanted = self.reads.setdefault(view_name, [])
        wanted.extend(f for f in features if f not in wanted)

    def build(self) -> Plan:
        names = [o.name for o in self.outputs]
        if not names:
            raise InvalidRequest("features: no features specified for retrieval")
        duplicates = sorted(n for n, times in Counter(names).items() if times > 1)
        if duplicates:
            hint = (
                "rename a view in the feature service (alias)"
                if self.full
                else "set full_feature_names to true, or request features with different names"
            )
            raise FeatureNameCollision(f"Duplicate features named {', '.join(duplicates)} found: {hint}")
        views = self.snap.feature_views
        join_keys = frozenset(k for name in self.reads for k in views[name].join_keys)
        request_fields: dict[str, str] = {}
        for name in self.on_demand:
            request_fields.update(self.snap.on_demand_views[name].request_fields)
        return Plan(
            outputs=tuple(self.outputs),
            reads={name: tuple(features) for name, features in self.reads.items()},
            on_demand={name: tuple(outputs) for name, outputs in self.on_demand.items()},
            gates=tuple(self.gates),
            join_keys=join_keys,
            request_fields=request_fields,
        )


# -- retrieve ---------------------------------------------------------------------------------


def entity_columns(entities: Any) -> tuple[dict[str, list[Any]], int]:
    """The request's `entities` as columns of equal length, and that length."""
    if not isinstance(entities, Mapping) or not entities:
        raise InvalidRequest("entities: a non-empty object of column -> list of values is required")
    lengths: dict[str, int] = {}
    for name, values in entities.items():
        if not isinstance(values, list):
            raise InvalidRequest(f"entities.{name}: a list of values is required")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        raise InvalidRequest(f"entities: all columns must have the same number of values, got {lengths}")
    return dict(entities), next(iter(lengths.values()))


def _distinct(columns: list[list[Any]], rows: int) -> tuple[list[tuple], list[int]]:
    """Distinct key tuples and, per row, the index of its tuple."""
    index: dict[tuple, int] = {}
    keys: list[tuple] = []
    positions: list[int] = []
    for values in zip(*columns, strict=True) if columns else [()] * rows:
        i = index.get(values)
        if i is None:
            i = index[values] = len(keys)
            keys.append(values)
        positions.append(i)
    return keys, positions


class _ViewResult:
    """One view's rows for the distinct keys, and which distinct key each request row has."""

    def __init__(self, view: FeatureViewMeta, rows: list[OnlineRow | None], positions: list[int], now: datetime):
        self.view = view
        self.rows = rows
        self.positions = positions
        cutoff = now - view.ttl if view.ttl is not None else None
        self.stale = [r is not None and cutoff is not None and r.event_timestamp < cutoff for r in rows]
        self.ts_text = [EPOCH_TEXT if r is None else rfc3339(r.event_timestamp) for r in rows]
        self.one_to_one = positions == list(range(len(rows)))  # every request row a distinct key

    def column(self, feature: str) -> tuple[list[Any], list[str], list[str]]:
        values: list[Any] = []
        statuses: list[str] = []
        for row, stale in zip(self.rows, self.stale, strict=True):
            if row is None or feature not in row.values:
                values.append(None)
                statuses.append(NOT_FOUND)
                continue
            value = row.values[feature]
            values.append(value)
            statuses.append(NULL_VALUE if value is None else OUTSIDE_MAX_AGE if stale else PRESENT)
        ts = self.ts_text
        if self.one_to_one:
            return values, statuses, ts
        p = self.positions
        return [values[i] for i in p], [statuses[i] for i in p], [ts[i] for i in p]

    def raw_column(self, feature: str) -> list[Any]:
        """Per request row, the stored value (None when missing): an on-demand input."""
        distinct = [None if r is None else r.values.get(feature) for r in self.rows]
        return [distinct[i] for i in self.positions]


def retrieve(
    snap: RegistrySnapshot, the_plan: Plan, entities: Any, store: OnlineStore, now: datetime
) -> dict[str, Any]:
    """Run `the_plan` for the request's entity rows; Feast's response as a dict."""
    columns, rows = entity_columns(entities)
    views = snap.feature_views

    missing_keys: dict[str, list[str]] = {}
    for name in the_plan.reads:
        for key in views[name].join_keys:
            if key not in columns:
                missing_keys.setdefault(key, []).append(name)
    if missing_keys:
        detail = "; ".join(f"{key!r} (feature view {', '.join(v)})" for key, v in missing_keys.items())
        raise InvalidRequest(f"entities: missing join key column(s): {detail}")
    missing_fields = [f for f in the_plan.request_fields if f not in columns]
    if missing_fields:
        raise RequestDataNotFound(missing_fields)

    converted: dict[str, list[Any]] = {}

    def convert(name: str, dtype: str, nullable: bool) -> list[Any]:
        if name not in converted:
            try:
                converted[name] = convert_column(columns[name], dtype, nullable=nullable)
            except Unconvertible as exc:
                raise InvalidRequest(f"entities.{name}{exc}") from None
        return converted[name]

    results: dict[str, _ViewResult] = {}
    for name, features in the_plan.reads.items():
        view = views[name]
        key_columns = [convert(k, view.join_key_dtypes.get(k, ""), False) for k in view.join_keys]
        keys, positions = _distinct(key_columns, rows)
        entity_keys = [dict(zip(view.join_keys, key, strict=True)) for key in keys]
        read = store.read(view.key, entity_keys, list(features))
        results[name] = _ViewResult(view, read, positions, now)

    computed: dict[str, dict[str, list[Any]]] = {}
    for name, outputs in the_plan.on_demand.items():
        odfv = snap.on_demand_views[name]
        inputs: dict[str, list[Any]] = {}
        for source in odfv.sources:
            for feature in views[source].features:
                column = results[source].raw_column(feature)
                inputs.setdefault(feature, column)
                inputs[f"{source}__{feature}"] = column
            for key in views[source].join_keys:
                inputs.setdefault(key, converted[key])
        for field, dtype in odfv.request_fields.items():
            inputs[field] = convert(field, dtype, True)
        wanted = on_demand.needed_inputs(odfv, list(outputs))
        if wanted is not None:
            inputs = {k: v for k, v in inputs.items() if k in wanted}
        computed[name] = on_demand.evaluate(odfv, list(outputs), inputs, rows)

    feature_names: list[str] = []
    results_json: list[dict[str, list[Any]]] = []
    epoch_column = [EPOCH_TEXT] * rows
    for name in columns:  # join keys first, in the request's order, echoed
        if name in the_plan.join_keys:
            feature_names.append(name)
            values = converted.get(name, columns[name])
            results_json.append(
                {"values": render_column(values, ""), "statuses": [PRESENT] * rows, "event_timestamps": epoch_column}
            )
    for output in the_plan.outputs:
        feature_names.append(output.name)
        if output.on_demand:
            values = computed[output.view][output.feature]
            statuses = [NULL_VALUE if v is None else PRESENT for v in values]
            results_json.append(
                {"values": render_column(values, ""), "statuses": statuses, "event_timestamps": epoch_column}
            )
        else:
            values, statuses, ts = results[output.view].column(output.feature)
            results_json.append(
                {"values": render_column(values, output.dtype), "statuses": statuses, "event_timestamps": ts}
            )
    return {"metadata": {"feature_names": feature_names}, "results": results_json}
