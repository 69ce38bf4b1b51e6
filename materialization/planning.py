"""Windows and partitions: what a materialization run covers, decided before any row moves.

Feast's rules (feast-reference §3.1), with Larder's defaults:

- `materialize(start, end)`: the window is [start, end], both ends inclusive; a start
  after the end is an error. Naive timestamps are UTC.
- `materialize_incremental(end)`: per view, the window starts at the end of the last
  successful interval; with none, at now - ttl when the view has a ttl, else at
  now - LARDER_MATERIALIZE_DEFAULT_LOOKBACK_DAYS (364 days: Feast's 52 weeks). A view
  already materialized up to `end` has nothing to do.
- Only views with `online: true` and a batch source (a file or postgres source, or a
  push source with a batch source) can be materialized.

Partitions (`partition_by`) are either
- time slices of the window: [b0, b1 - 1µs], [b1, b2 - 1µs], …, [bn-1, end]. The latest row
  per entity over the whole window is the latest of the slices' latest rows, and online
  stores keep the newest event per entity whatever the order of writes (latest wins), so
  slices can run on different workers in any order and the result is that of one pass.
  Each slice reads only its rows, but writes every entity that has rows in it: an
  entity active all window long is written once per slice.
- entity-key hash buckets: partition i of n keeps the entities whose key hashes to i
  (materialization.engine.entity_buckets). Each entity is written once, by one
  partition. Each partition scans the whole window, but with one integer join key the
  DuckDB engine filters by bucket inside the scan (`pull_latest(bucket=...)`), so only
  the bucket's rows are aggregated; other engines and keys aggregate everything and the
  bucket is picked from the output.
Time slices suit long windows with few rows per entity per slice; buckets suit windows
where writing dominates (many entities, few rows each). Default: time slices, one per
LARDER_MATERIALIZE_PARTITION_DAYS of window (docs/materialization.md has the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from .errors import InvalidWindow, NotMaterializable

MICROSECOND = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


PARTITION_BY = ("time", "entity")


@dataclass(frozen=True, slots=True)
class Window:
    """A closed interval [start, end] of event times, both aware UTC."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start


def as_utc(value: datetime | str, what: str = "timestamp") -> datetime:
    """An aware UTC datetime from a datetime or an ISO 8601 string (naive: UTC, as Feast).

    A trailing "Z" is accepted; anything else unreadable raises InvalidWindow naming `what`.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidWindow(f"{what} {value!r} is not an ISO 8601 timestamp (e.g. 2026-01-31T00:00:00Z)") from None
    if not isinstance(value, datetime):
        raise InvalidWindow(f"{what} must be an ISO 8601 timestamp, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def check_window(start: datetime, end: datetime) -> Window:
    """The window [start, end]; InvalidWindow when start is after end."""
    start, end = as_utc(start, "start"), as_utc(end, "end")
    if start > end:
        raise InvalidWindow(f"start {start.isoformat()} is after end {end.isoformat()}")
    return Window(start, end)


def check_view(feature_view: Any) -> None:
    """NotMaterializable unless the view is online and reads a batch source."""
    name = f"feature view {feature_view.name!r}"
    if not feature_view.online:
        raise NotMaterializable(f"{name} is offline-only (online: false): nothing to write to the online store")
    source = feature_view.source
    if source.kind == "push":
        if source.batch_source_id is None:
            raise NotMaterializable(f"{name}: push source {source.name!r} has no batch source to materialize from")
    elif source.kind not in ("file", "postgres"):
        raise NotMaterializable(f"{name}: {source.kind} source {source.name!r} is not a batch source")


def default_lookback() -> timedelta:
    return timedelta(days=float(getattr(settings, "LARDER_MATERIALIZE_DEFAULT_LOOKBACK_DAYS", 364)))


def incremental_start(
    last_end: datetime | None, ttl: timedelta, now: datetime | None = None, lookback: timedelta | None = None
) -> datetime:
    """Where an incremental run starts: the last interval's end, else now - ttl (ttl > 0),
    else now - the default lookback."""
    if last_end is not None:
        return as_utc(last_end)
    now = as_utc(now or timezone.now())
    if ttl and ttl > timedelta(0):
        return now - ttl
    return now - (lookback if lookback is not None else default_lookback())


def last_interval_end(feature_view: Any) -> datetime | None:
    """The end of the view's latest recorded interval (intervals survive re-apply)."""
    from django.db.models import Max

    return feature_view.materialization_intervals.aggregate(last=Max("end"))["last"]


def incremental_window(feature_view: Any, end: datetime, now: datetime | None = None) -> Window | None:
    """The incremental window of a view up to `end`, or None when it is already
    materialized up to (or past) `end`."""
    end = as_utc(end, "end")
    start = incremental_start(last_interval_end(feature_view), feature_view.ttl, now)
    if start >= end:
        return None
    return Window(start, end)


def partition_count(window: Window, requested: int | None = None) -> int:
    """How many time slices a window is cut into: `requested` when given (1..max),
    else one per LARDER_MATERIALIZE_PARTITION_DAYS of window, at most
    LARDER_MATERIALIZE_MAX_PARTITIONS, at least 1."""
    maximum = max(1, int(getattr(settings, "LARDER_MATERIALIZE_MAX_PARTITIONS", 8)))
    span_us = _micros(window.end) - _micros(window.start)
    if requested is not None:
        if requested < 1:
            raise InvalidWindow(f"partitions must be at least 1, got {requested}")
        if requested > maximum:
            raise InvalidWindow(f"partitions must be at most {maximum} (LARDER_MATERIALIZE_MAX_PARTITIONS)")
        wanted = requested
    else:
        days = float(getattr(settings, "LARDER_MATERIALIZE_PARTITION_DAYS", 30))
        per_slice_us = max(1, int(days * 86_400_000_000))
        wanted = min(maximum, max(1, math.ceil(span_us / per_slice_us)))
    return max(1, min(wanted, span_us + 1))  # every slice holds at least one microsecond


def plan_partitions(window: Window, count: int) -> list[Window]:
    """`count` contiguous, non-overlapping slices covering [start, end] exactly, on
    microsecond boundaries, as equal as the microsecond grid allows."""
    if count < 1:
        raise ValueError("count must be at least 1")
    start_us, end_us = _micros(window.start), _micros(window.end)
    total = end_us - start_us + 1  # inclusive microseconds
    count = min(count, total)
    bounds = [start_us + (total * i) // count for i in range(count)] + [end_us + 1]
    return [Window(_from_micros(bounds[i]), _from_micros(bounds[i + 1] - 1)) for i in range(count)]


@dataclass(frozen=True, slots=True)
class Slice:
    """One partition's share of a job: its window, and its entity bucket (0 of 1: all)."""

    window: Window
    bucket: int = 0
    buckets: int = 1


def plan_slices(window: Window, partitions: int | None = None, partition_by: str | None = None) -> list[Slice]:
    """The partitions of a job over `window`: `partitions` of them (default: from the
    window's length), cut by time or by entity hash (default LARDER_MATERIALIZE_PARTITION_BY)."""
    by = partition_by or getattr(settings, "LARDER_MATERIALIZE_PARTITION_BY", "time")
    if by not in PARTITION_BY:
        raise InvalidWindow(f"partition_by must be one of {', '.join(PARTITION_BY)}, got {by!r}")
    if by == "entity":
        maximum = max(1, int(getattr(settings, "LARDER_MATERIALIZE_MAX_PARTITIONS", 8)))
        count = partitions if partitions is not None else partition_count(window)
        if not 1 <= count <= maximum:
            raise InvalidWindow(f"partitions must be between 1 and {maximum} (LARDER_MATERIALIZE_MAX_PARTITIONS)")
        return [Slice(window, i, count) for i in range(count)]
    return [Slice(w) for w in plan_partitions(window, partition_count(window, partitions))]


def _micros(value: datetime) -> int:
    delta = as_utc(value) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)
