"""The online store contract: the latest feature values per entity, per view.

A store keeps, for each (project, feature view, entity key), one row: the feature
values of the newest event written and that event's timestamp. The serving layer
reads many entities at once; materialization and push write batches.

Contract every backend honours (tests/online_contract.py checks it on each):

- Latest wins. A row whose event timestamp is older than or equal to the stored one
  for that entity and view is skipped. Inside one batch the latest row per entity
  wins; of rows with equal timestamps, the later one in the batch.
- A write carries every feature of the view (the serving layer validates pushes, as
  Feast does); features left out of a write are not guaranteed to be kept.
- Null feature values are stored as null and read back as None (the serving layer
  reports NULL_VALUE); a requested feature that was never written for the row is
  absent from `OnlineRow.values` (NOT_FOUND); an entity with no row for the view
  reads as None (NOT_FOUND).
- Values round-trip exactly through `serving.online.codec` (int, float, str, bytes,
  bool, None, aware datetimes and lists of these).
- Batches cost a bounded number of round trips, not one per row.
- Errors: ValueError for input that cannot be stored (naive timestamp, unsupported
  value or key), raised before anything is written; OnlineStoreUnavailable when the
  backend cannot be reached; OnlineStoreError for other backend failures.
- Stores do not touch the ORM per call: callers pass a `ViewKey` built once from the
  registry (the serving layer caches it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    import pyarrow as pa


class OnlineStoreError(Exception):
    """Something went wrong in an online store."""


class OnlineStoreUnavailable(OnlineStoreError):
    """The store cannot be reached; the message names it (never its credentials)."""


@dataclass(frozen=True, slots=True)
class ViewKey:
    """What a store needs to know about a feature view: its project, its name and the
    join keys of its entities (kept sorted, so the caller's order does not matter)."""

    project: str
    name: str
    join_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "join_keys", tuple(sorted(self.join_keys)))

    @classmethod
    def for_feature_view(cls, feature_view: Any) -> ViewKey:
        """Build from a catalog FeatureView (reads its project and entities: call once, then cache)."""
        join_keys = [key for entity in feature_view.entities.all() for key in entity.join_keys]
        return cls(feature_view.project.name, feature_view.name, tuple(join_keys))


@dataclass(frozen=True, slots=True)
class OnlineRows:
    """A batch to write, columnar.

    `entity_keys` is one {join key: value} dict per row, or columns {join key: values};
    `features` maps each feature name to one value per row; `event_timestamps` are
    aware datetimes; `created_timestamps` are optional (kept by the SQL store for
    inspection only: latest-wins compares event timestamps).
    """

    entity_keys: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
    features: Mapping[str, Sequence[Any]]
    event_timestamps: Sequence[datetime]
    created_timestamps: Sequence[datetime] | None = None

    def __post_init__(self) -> None:
        n = len(self.event_timestamps)
        lengths = {"event_timestamps": n}
        if isinstance(self.entity_keys, Mapping):
            lengths.update({f"entity column {name!r}": len(col) for name, col in self.entity_keys.items()})
        else:
            lengths["entity_keys"] = len(self.entity_keys)
        lengths.update({f"feature {name!r}": len(col) for name, col in self.features.items()})
        if self.created_timestamps is not None:
            lengths["created_timestamps"] = len(self.created_timestamps)
        wrong = {name: size for name, size in lengths.items() if size != n}
        if wrong:
            raise ValueError(f"online rows need one value per row ({n} event timestamps), but got {wrong}")

    def __len__(self) -> int:
        return len(self.event_timestamps)


@dataclass(frozen=True, slots=True)
class OnlineRow:
    """One entity's stored row for a view: requested feature values that are stored
    (None for a stored null), and the event timestamp of the write that produced them."""

    values: dict[str, Any]
    event_timestamp: datetime


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Rows applied, and rows skipped because a newer or equal event was already stored
    or came later in the same batch (written + skipped == rows given)."""

    written: int
    skipped: int


class OnlineStore(ABC):
    """Base of every online store; concrete stores are named by a short type name in
    settings (serving.online.registry) and built with `from_settings()`.

    Instances are shared by the threads of a process: keep per-call state local.
    """

    type_name: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def from_settings(cls) -> Self:
        """The store configured by Django settings (raises ImproperlyConfigured)."""

    @abstractmethod
    def write_batch(self, view: ViewKey, rows: OnlineRows) -> WriteResult:
        """Write rows for a view, latest-wins per entity (see module docstring)."""

    def write_arrow(self, view: ViewKey, batch: pa.RecordBatch | pa.Table, features: Sequence[str]) -> WriteResult:
        """`write_batch` of an Arrow batch with the columns of `pull_latest`: each join key
        of the view, each of `features`, `event_timestamp` and optionally `created`
        (serving.online.columnar). Same contract and errors as `write_batch`.

        Materialization writes through this, so a store can encode whole columns at
        once instead of value by value; by default the batch is converted to OnlineRows."""
        from .columnar import to_online_rows

        return self.write_batch(view, to_online_rows(batch, view, features))

    @abstractmethod
    def read(
        self, view: ViewKey, entity_keys: Sequence[Mapping[str, Any]], features: Sequence[str]
    ) -> list[OnlineRow | None]:
        """Per entity key (a {join key: value} dict, in order, duplicates allowed): its
        row with the requested features, or None when it has no row for the view."""

    @abstractmethod
    def delete_view(self, view: ViewKey) -> int:
        """Remove every row of the view; returns how many entities had one."""

    @abstractmethod
    def count(self, view: ViewKey) -> int:
        """How many entities have a row for the view (may scan: admin and metrics only)."""

    @abstractmethod
    def ping(self) -> None:
        """Return when the store answers; raise OnlineStoreUnavailable otherwise (/health)."""

    def describe(self) -> str:
        """A short, credential-free description for logs and health messages."""
        return self.type_name
