"""The offline engine contract: point-in-time joins, window reads and appends over one
kind of source.

Semantics every engine honours (issue 5, feast-reference §2.2; checked against the
plain-Python reference in tests/offline_reference.py):

- For each entity row (join keys K, event time T) and each requested view (ttl L):
  the source row with the same keys, `ts <= T` and, when L > 0, `ts >= T - L` (both
  inclusive) and the greatest `ts` wins; ties on `ts` go to the greatest created
  timestamp (nulls last), further ties to any one of them. No such row -> nulls.
- Exactly one output row per entity row, duplicates kept, in input order; entity
  columns first (the timestamp column normalised to aware UTC), then the features
  in request order grouped by view, named `feature` or `view__feature`.
- Field mapping (source column -> name) applies to features, join keys; timestamps
  are UTC; naive timestamps (entity or source) are read as UTC.

Errors: OfflineInputError (a ValueError; the API answers 422) names the column or
object at fault; OfflineEngineError is anything else that went wrong in the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Self

import pyarrow as pa

if TYPE_CHECKING:
    from .specs import JoinPlan, SourceSpec, ViewSpec

# Column names of pull_latest / pull_all results, besides join keys and features.
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created"


class OfflineError(Exception):
    """Base of the offline engines' errors."""


class OfflineInputError(OfflineError, ValueError):
    """The request cannot be answered as asked (bad column, unknown feature, ...)."""


class OfflineEngineError(OfflineError):
    """The engine failed (source unreadable, database down, ...); the message names the source."""


class OfflineEngine(ABC):
    """One engine per source kind. Instances are stateless and thread-safe (a connection
    per call), so `serving.offline.registry` keeps one per process."""

    @classmethod
    def from_settings(cls) -> Self:
        """The engine configured from Django settings (engines read their own settings)."""
        return cls()

    def get_historical_features(
        self,
        entity: pa.Table,
        views: Sequence[tuple[ViewSpec, Sequence[str]]],
        full_feature_names: bool,
        timestamp_column: str = "event_timestamp",
    ) -> pa.Table:
        """The point-in-time join of `entity` with each (view, requested features).

        Validates and normalises the entity table (serving.offline.entity), then runs
        the engine's join. Result: one row per entity row, in order; entity columns,
        then features.
        """
        from .entity import plan_join, prepare_entity

        plans = plan_join(entity, views, full_feature_names, timestamp_column)
        prepared = prepare_entity(entity, plans, timestamp_column)
        if prepared.num_rows == 0:
            raise OfflineInputError("the entity table has no rows")
        features = self.point_in_time_join(prepared, plans, timestamp_column)
        if features.num_rows != prepared.num_rows:
            raise OfflineEngineError(
                f"{type(self).__name__} returned {features.num_rows} rows for {prepared.num_rows} entity rows"
            )
        for name in features.column_names:
            prepared = prepared.append_column(name, features.column(name))
        return prepared

    @abstractmethod
    def point_in_time_join(self, entity: pa.Table, plans: Sequence[JoinPlan], timestamp_column: str) -> pa.Table:
        """Only the feature columns (output names, plan order), one row per `entity` row
        in its order. `entity` is already validated: timestamps are timestamp[us, UTC],
        every join key is present (cast to nothing in particular: engines cast keys to
        the source's types)."""

    @abstractmethod
    def pull_latest(self, view: ViewSpec, start: datetime, end: datetime) -> Iterator[pa.RecordBatch]:
        """The latest row per entity key among rows with `start <= ts <= end` (ties by
        created), as batches of: join keys, features, `event_timestamp`, `created`
        (null when the source has no created column). Used by materialization."""

    @abstractmethod
    def pull_all(self, view: ViewSpec, start: datetime, end: datetime) -> Iterator[pa.RecordBatch]:
        """Every row with `start <= ts <= end`, same columns as pull_latest, in no particular order."""

    @abstractmethod
    def write(self, source: SourceSpec, rows: pa.Table) -> int:
        """Append `rows` to the source, all or nothing; returns the number of rows written.

        Columns are named by source column or by mapped (feature / join key) name; they
        are cast to the source's column types; the timestamp column is required.
        """

    @abstractmethod
    def columns(self, source: SourceSpec) -> dict[str, str]:
        """The source's columns (source names, before field mapping) -> Arrow type strings."""
