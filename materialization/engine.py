"""The materialization engine: offline latest rows in, online rows out. No Celery here.

For one view and one window, the offline engine's `pull_latest` streams the latest row
per entity (Arrow record batches); each batch is cut into chunks of at most
`batch_rows` rows and written with the store's `write_arrow` (latest-wins; the Redis
store encodes whole columns at once, no Python value per feature). With `bucket=(i, n)`
only the entities whose key hashes to bucket i of n are kept (an entity-hash partition:
n partitions write disjoint sets of entities); the DuckDB engine applies the bucket
inside its scan, so the partitions divide the aggregation too.

Memory is bounded by one record batch plus one chunk, whatever the number of rows:
nothing is collected across batches. After every chunk the progress callback gets the
running counts; it may raise (JobCancelled) to stop the run between chunks.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings

from serving.offline.base import OfflineEngine
from serving.offline.specs import ViewSpec
from serving.online import OnlineRows, OnlineStore, ViewKey, columnar
from serving.online.keys import encode_entity_keys

from .planning import Window

DEFAULT_BATCH_ROWS = 10_000  # Feast's local engine wrote chunks of 10,000 rows (DEFAULT_BATCH_SIZE)
_GOLDEN = pa.scalar(11400714819323198485, pa.uint64())  # Fibonacci hashing: spreads sequential ids
_SHIFT = pa.scalar(32, pa.uint64())


@dataclass(slots=True)
class Progress:
    """Running counts of one run: rows read from the offline engine (latest rows, one
    per entity per window), rows the online store applied, and rows it skipped because
    it already held a newer or equal event for that entity."""

    rows_read: int = 0
    rows_written: int = 0
    rows_skipped: int = 0
    chunks: int = 0


ProgressCallback = Callable[[Progress], None]


def view_key(view: ViewSpec) -> ViewKey:
    """The online store's name for a view (same project, name and join keys)."""
    return ViewKey(view.project, view.name, view.join_keys)


def batch_rows_setting() -> int:
    return max(1, int(getattr(settings, "LARDER_MATERIALIZE_BATCH_ROWS", DEFAULT_BATCH_ROWS)))


def to_online_rows(batch: pa.RecordBatch | pa.Table, view: ViewSpec) -> OnlineRows:
    """One chunk of `pull_latest` output as OnlineRows (join keys, features, event and,
    when the source has one and it is never null, created timestamps)."""
    return columnar.to_online_rows(batch, view_key(view), view.feature_names)


def entity_buckets(batch: pa.RecordBatch | pa.Table, join_keys: tuple[str, ...], buckets: int) -> pa.Array:
    """The bucket (0..buckets-1) of every row's entity key: the same key, the same bucket,
    in every process. One integer key: Fibonacci hashing, vectorised; any other key: CRC-32
    of its canonical text (serving.online.keys)."""
    n = pa.scalar(buckets, pa.uint64())
    if len(join_keys) == 1 and pa.types.is_integer(batch.schema.field(join_keys[0]).type):
        ids = pc.cast(batch.column(batch.schema.get_field_index(join_keys[0])), pa.int64())
        mixed = pc.multiply(pc.cast(ids, pa.uint64(), safe=False), _GOLDEN)
        return pc.modulo(pc.shift_right(mixed, _SHIFT), n)
    columns = {k: batch.column(batch.schema.get_field_index(k)).to_pylist() for k in join_keys}
    keys = encode_entity_keys(join_keys, columns) if join_keys else [""] * batch.num_rows
    return pa.array([zlib.crc32(key.encode()) % buckets for key in keys], pa.uint64())


def _pull_latest(
    offline: OfflineEngine, view: ViewSpec, window: Window, bucket: tuple[int, int] | None
) -> Iterator[pa.RecordBatch]:
    """The window's latest rows; an engine whose pull_latest takes `bucket` (DuckDB, for one
    integer join key) aggregates only that bucket's entities, so n entity partitions divide
    the read as well as the writes. `_chunks` filters by bucket all the same (cheap), so an
    engine that ignores it stays correct."""
    if bucket is not None and bucket[1] > 1 and "bucket" in inspect.signature(offline.pull_latest).parameters:
        return iter(offline.pull_latest(view, window.start, window.end, bucket=bucket))
    return iter(offline.pull_latest(view, window.start, window.end))


def _chunks(
    batches: Iterator[pa.RecordBatch], size: int, view: ViewSpec, bucket: tuple[int, int] | None
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if bucket is not None and bucket[1] > 1:
            mine = pc.equal(entity_buckets(batch, view.join_keys, bucket[1]), pa.scalar(bucket[0], pa.uint64()))
            batch = batch.filter(mine)
        for offset in range(0, batch.num_rows, size):
            yield batch.slice(offset, size)


def materialize_window(
    view: ViewSpec,
    window: Window,
    *,
    offline: OfflineEngine,
    store: OnlineStore,
    batch_rows: int | None = None,
    on_progress: ProgressCallback | None = None,
    bucket: tuple[int, int] | None = None,
) -> Progress:
    """Write the latest row per entity of `view` in `window` to `store` (only the entities
    of `bucket` (i, n) when given); return the counts.

    Errors of the engines and stores propagate unchanged (the caller decides what is
    transient); rows written before an error stay written, which is harmless: a rerun
    writes the same latest rows again and the store keeps the newest.
    """
    size = batch_rows or batch_rows_setting()
    key = view_key(view)
    progress = Progress()
    for chunk in _chunks(_pull_latest(offline, view, window, bucket), size, view, bucket):
        if chunk.num_rows == 0:
            continue
        result = store.write_arrow(key, chunk, view.feature_names)
        progress.rows_read += chunk.num_rows
        progress.rows_written += result.written
        progress.rows_skipped += result.skipped
        progress.chunks += 1
        if on_progress is not None:
            on_progress(progress)
    return progress
