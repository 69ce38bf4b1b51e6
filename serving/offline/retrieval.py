"""Historical retrieval across engines: the one entry point the API and jobs call.

Each view is joined by the engine of its source kind; results are put side by side in
request order. Engines return rows in entity order, so row i of every engine's result
belongs to entity row i (the internal row id is the position).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from .base import OfflineEngineError, OfflineInputError
from .entity import infer_timestamp_column, plan_join, prepare_entity
from .registry import engine_for
from .specs import ViewSpec


def get_historical_features(
    entity: pa.Table,
    views: Sequence[tuple[ViewSpec, Sequence[str]]],
    full_feature_names: bool,
    timestamp_column: str | None = None,
) -> pa.Table:
    """The point-in-time-correct training set: one row per `entity` row in its order,
    entity columns first (event time as aware UTC), then each view's requested features
    in request order, named `feature` or `view__feature`.

    `timestamp_column` defaults to `event_timestamp`, else the only timestamp column.
    Raises OfflineInputError for bad input (the message names the column or feature),
    OfflineEngineError when an engine fails.
    """
    ts = timestamp_column or infer_timestamp_column(entity)
    plans = plan_join(entity, views, full_feature_names, ts)
    prepared = prepare_entity(entity, plans, ts)
    if prepared.num_rows == 0:
        raise OfflineInputError("the entity table has no rows")

    groups: dict[int, tuple[object, list[int]]] = {}
    for i, plan in enumerate(plans):
        engine = engine_for(plan.view.source)
        groups.setdefault(id(engine), (engine, []))[1].append(i)

    columns: dict[int, list[pa.ChunkedArray]] = {}
    for engine, indexes in groups.values():
        chosen = [plans[i] for i in indexes]
        keys = {key for plan in chosen for key in plan.view.join_keys}
        slim = prepared.select([name for name in prepared.column_names if name in keys or name == ts])
        result = engine.point_in_time_join(slim, chosen, ts)
        if result.num_rows != prepared.num_rows:
            raise OfflineEngineError(
                f"{type(engine).__name__} returned {result.num_rows} rows for {prepared.num_rows} entity rows"
            )
        for i in indexes:
            columns[i] = [result.column(name) for name in plans[i].output_names]

    out = prepared
    for i, plan in enumerate(plans):
        for name, column in zip(plan.output_names, columns[i], strict=True):
            out = out.append_column(name, column)
    return out
