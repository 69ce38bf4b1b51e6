"""A training set from a plan and entity rows: the point-in-time join
(serving.offline.retrieval), then the on-demand views over its result, then the
columns as requested.

The engines are asked for full feature names (`view__feature`) always, so the inputs
of on-demand views that were not requested never clash with requested features; the
requested names (`feature`, or `view__feature` / `alias__feature` with
full_feature_names) are given at the end. Output: the entity columns in their order,
then the requested features in request order (Feast's rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from serving import odfv as on_demand
from serving.offline.base import OfflineInputError
from serving.offline.entity import infer_timestamp_column, normalize_timestamps, plan_join
from serving.offline.retrieval import get_historical_features

from .entities import arrow_type
from .resolve import HistoricalPlan


def _internal(view: str, feature: str) -> str:
    return f"{view}__{feature}"


def _on_demand_inputs(plan: HistoricalPlan, name: str, joined: pa.Table) -> dict[str, list[Any]]:
    """An on-demand view's inputs as serving.odfv expects them: source features by bare name
    (the first source wins a clash) and by full name, join keys, request fields."""
    snap = plan.snapshot
    odfv = snap.on_demand_views[name]
    columns = set(joined.column_names)
    inputs: dict[str, list[Any]] = {}
    for source in odfv.sources:
        view = snap.feature_views[source]
        for feature in view.features:
            internal = _internal(source, feature)
            if internal in columns:
                values = joined.column(internal).to_pylist()
                inputs.setdefault(feature, values)
                inputs[internal] = values
        for key in view.join_keys:
            if key in columns and key not in inputs:
                inputs[key] = joined.column(key).to_pylist()
    for field in odfv.request_fields:  # present: check_entity made sure
        inputs[field] = joined.column(field).to_pylist()
    wanted = on_demand.needed_inputs(odfv, list(plan.plan.on_demand[name]))
    return inputs if wanted is None else {k: v for k, v in inputs.items() if k in wanted}


def _typed(values: list[Any], dtype: str) -> pa.Array:
    typ = arrow_type(dtype)
    try:
        return pa.array(values, typ) if typ is not None else pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array(values)


def _without_features(entity: pa.Table) -> pa.Table:
    """The entity table with its event time normalised (a request of on-demand views fed
    by request data only: no join to run)."""
    ts = infer_timestamp_column(entity)
    index = entity.column_names.index(ts)
    return entity.set_column(index, ts, normalize_timestamps(entity.column(index), ts))


def check_entity(plan: HistoricalPlan, entity: pa.Table) -> None:
    """What can be checked on the entity table's columns alone, before any join (and
    before a job is queued): rows, the event time, join keys, request data, name clashes."""
    if entity.num_rows == 0:
        raise OfflineInputError("the entity set is empty: send at least one entity row")
    entity_columns = entity.column_names
    taken = [o.name for o in plan.plan.outputs if o.name in entity_columns]
    if taken:
        raise OfflineInputError(
            f"the entity table has a column named like a requested feature: {', '.join(taken)} "
            "(rename the column, or use full_feature_names)"
        )
    ts = infer_timestamp_column(entity)
    if plan.views:
        plan_join(entity, [(spec, list(f)) for spec, f in plan.views], True, ts)
    missing = [f for f in plan.plan.request_fields if f not in entity_columns]
    if missing:
        raise OfflineInputError(
            f"the entity table has no column {', '.join(repr(f) for f in missing)}: request data "
            "that the on-demand feature views asked for need (a column per request field)"
        )


def build_training_set(plan: HistoricalPlan, entity: pa.Table) -> pa.Table:
    """The training set for `entity` (one row per entity row, in order)."""
    check_entity(plan, entity)
    entity_columns = entity.column_names
    if plan.views:
        joined = get_historical_features(entity, [(spec, list(f)) for spec, f in plan.views], True)
    else:
        joined = _without_features(entity)

    computed: dict[str, dict[str, list[Any]]] = {}
    for name, outputs in plan.plan.on_demand.items():
        inputs = _on_demand_inputs(plan, name, joined)
        computed[name] = on_demand.evaluate(plan.snapshot.on_demand_views[name], list(outputs), inputs, joined.num_rows)

    arrays: list[pa.ChunkedArray | pa.Array] = [joined.column(name) for name in entity_columns]
    names = list(entity_columns)
    for output in plan.plan.outputs:
        if output.on_demand:
            arrays.append(_typed(computed[output.view][output.feature], output.dtype))
        else:
            arrays.append(joined.column(_internal(output.view, output.feature)))
        names.append(output.name)
    return pa.Table.from_arrays(arrays, names=names)


def build_in_chunks(plan: HistoricalPlan, entity: pa.Table, chunk_rows: int) -> Iterator[tuple[int, pa.Table]]:
    """The training set chunk by chunk of `chunk_rows` entity rows: (rows done, chunk result).
    Entity rows are independent in a point-in-time join, so chunks concatenate to the whole."""
    done = 0
    schema: pa.Schema | None = None
    size = max(chunk_rows, 1)
    for offset in range(0, entity.num_rows, size):
        chunk = entity.slice(offset, size)  # zero-copy
        table = build_training_set(plan, chunk)
        if schema is None:
            schema = table.schema
        elif table.schema != schema:
            table = _unify(table, schema)
        done += chunk.num_rows
        yield done, table


def _unify(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A later chunk in the first chunk's schema (an all-null column may come back typed null)."""
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise OfflineInputError(f"chunks of the result disagree on column types: {exc}") from exc
