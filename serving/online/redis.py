"""The `redis` online store: production, Redis or Redis Cluster (redis-py).

Layout. One hash per entity key and project, shared by every view of that entity:

    key     {<project>:<entity key>}            e.g. {driver_stats:driver_id=1001}
    field   <view>:<feature>  -> the value, serving.online.codec (JSON with tags)
    field   _ts:<view>        -> event time of the view's row, epoch microseconds (decimal)

The braces make the whole key a Redis Cluster hash tag, so one entity's hash lives in
one slot, and a write or read of it is a single-slot command. Entity keys are the
canonical strings of serving.online.keys. Names cannot contain ":" (docs/feature-repo.md);
a view literally named `_ts` could collide with another view's time field (as in
Feast's layout) — do not name a view `_ts`. A hash with no fields left disappears.

Writes (the batch's latest row per entity; `write_arrow` encodes whole Arrow columns
at once, codec.encode_column, for the same bytes as `write_batch`):
- `lua` (default): a compare-and-set script (EVALSHA) that writes an entity's fields
  only when its event time is newer than `_ts:<view>`, atomically on the server, so
  concurrent writers cannot let an older row win. One call covers `script_keys`
  entities (field names sent once per call). On a single Redis the calls go out on
  one connection, one socket write per `chunk_size` entities as they are packed, and
  the replies are read once at the end: the server runs one chunk while the next is
  packed, one round trip in all. On a cluster a call may only touch one slot, so there
  it is one call per entity, pipelined, one round trip per chunk.
- `check_then_set`: a pipelined HMGET of `_ts:<view>`, then a pipelined HSET of the
  newer rows: two round trips per chunk, and a race (another writer between the two
  can have its newer row overwritten). Feast's way; kept for the benchmark.
Reads: one HMGET (`_ts:<view>` + the requested fields) per distinct entity, one round
trip per `chunk_size` entities (packed by hiredis and sent at once; on a cluster a
plain command or a pipeline), and the values of all complete rows of a chunk decoded
by one orjson call (codec.decode_rows).
delete_view and count SCAN every hash of the project (`{<project>:*`, all primaries
in a cluster): O(entities of the project), one round trip per SCAN page plus one per
page for the HDEL script or HEXISTS checks. Admin and metrics work, not serving.
Scripts are not assumed loaded: a NOSCRIPT reply loads them and retries those calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import pyarrow as pa
import redis
import redis.cluster
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import NoScriptError

from .base import OnlineRow, OnlineRows, OnlineStore, OnlineStoreError, OnlineStoreUnavailable, ViewKey, WriteResult
from .codec import decode_rows, decode_value, encode_column, encode_value, from_micros, int_text_column, to_micros
from .columnar import check_columns, event_micros
from .keys import encode_entity_key, encode_entity_keys, latest_per_entity

try:  # hiredis (in requirements) packs a command in C; redis-py's own packer adds a Python pass per argument
    from hiredis import pack_command
except ImportError:  # pragma: no cover
    pack_command = None

WriteMode = Literal["lua", "check_then_set"]


@dataclass(frozen=True)
class _Script:
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


# Both scripts take any number of KEYS (entity hashes); on Redis Cluster they get one key
# per call (keys of one call must share a slot), on a single Redis up to `script_keys`.
#
# ARGV: "_ts:<view>", n, the n feature fields, then per key its event time (epoch us) and
# n values. Writes a key only when its event time is newer than the stored one; returns
# how many keys it wrote. tonumber() is a double: exact for epoch microseconds until 2255.
WRITE_IF_NEWER = _Script(
    """
local ts_field, n = ARGV[1], tonumber(ARGV[2])
-- one HSET argument list, reused: field names at odd places, this key's values at even
local args = {ts_field, false}
for j = 1, n do
  args[2 * j + 1] = ARGV[2 + j]
  args[2 * j + 2] = false
end
local written, at = 0, 2 + n
for k = 1, #KEYS do
  local ts = ARGV[at + 1]
  local stored = redis.call('HGET', KEYS[k], ts_field)
  if not stored or tonumber(stored) < tonumber(ts) then
    args[2] = ts
    for j = 1, n do
      args[2 * j + 2] = ARGV[at + 1 + j]
    end
    if #args <= 1000 then
      redis.call('HSET', KEYS[k], unpack(args))
    else
      for i = 1, #args, 1000 do
        redis.call('HSET', KEYS[k], unpack(args, i, math.min(i + 999, #args)))
      end
    end
    written = written + 1
  end
  at = at + n + 1
end
return written
"""
)

# ARGV: "<view>:" field prefix, "_ts:<view>". Deletes the view's fields of each key;
# returns how many keys had a row for the view.
DELETE_VIEW_FIELDS = _Script(
    """
local prefix, ts_field = ARGV[1], ARGV[2]
local n, had = string.len(prefix), 0
for k = 1, #KEYS do
  local doomed = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[k])) do
    if field == ts_field then
      had = had + 1
      doomed[#doomed + 1] = field
    elseif string.sub(field, 1, n) == prefix then
      doomed[#doomed + 1] = field
    end
  end
  for i = 1, #doomed, 1000 do
    redis.call('HDEL', KEYS[k], unpack(doomed, i, math.min(i + 999, #doomed)))
  end
end
return had
"""
)


def hash_key(project: str, entity_key: str) -> str:
    """The hash of one entity in one project (the braces are the cluster hash tag)."""
    return f"{{{project}:{entity_key}}}"


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _decode_replies(keys: list[str], replies: list[list[bytes | None]], names: list[str]) -> dict[str, OnlineRow]:
    """The rows of HMGET replies ([time, value, ...], time None: no row for the view).
    Rows with every field present are decoded together (codec.decode_rows: one orjson
    call for the chunk); a row missing a field (never written), value by value."""
    rows: dict[str, OnlineRow] = {}
    complete: list[tuple[str, list[bytes]]] = []
    for key, reply in zip(keys, replies, strict=True):
        if reply[0] is None:
            continue
        if None in reply:
            rows[key] = _decode_reply(reply, names)
        else:
            complete.append((key, reply))
    decoded = decode_rows([reply for _, reply in complete])
    if decoded is None:  # bytes this codec did not write: value by value, which raises on bad ones
        rows.update((key, _decode_reply(reply, names)) for key, reply in complete)
    else:
        for (key, _), (ts, *values) in zip(complete, decoded, strict=True):
            rows[key] = OnlineRow(dict(zip(names, values, strict=True)), from_micros(ts))
    return rows


def _decode_reply(reply: list[bytes | None], names: list[str]) -> OnlineRow:
    ts, *values = reply
    row = {name: decode_value(v) for name, v in zip(names, values, strict=True) if v is not None}
    return OnlineRow(row, from_micros(int(ts)))


@contextmanager
def _redis_errors(store: RedisOnlineStore) -> Iterator[None]:
    """Redis exceptions as the store's own, naming the server (never its password)."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise OnlineStoreUnavailable(f"online store {store.describe()} is unavailable: {exc}") from exc
    except redis.exceptions.RedisError as exc:
        raise OnlineStoreError(f"online store {store.describe()} failed: {exc}") from exc


class RedisOnlineStore(OnlineStore):
    """Latest feature rows in Redis hashes (layout in the module docstring)."""

    type_name = "redis"

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        *,
        write_mode: WriteMode = "lua",
        chunk_size: int = 1000,
        script_keys: int = 100,
        scan_count: int = 1000,
        target: str = "",
    ) -> None:
        if write_mode not in ("lua", "check_then_set"):
            raise ValueError(f"unknown write_mode {write_mode!r} (lua, check_then_set)")
        self.client = client
        self.write_mode = write_mode
        self.chunk_size = chunk_size  # entities per round trip
        self.script_keys = script_keys  # entities per script call: bounds how long one call blocks Redis
        self.scan_count = scan_count
        self.target = target

    @classmethod
    def from_url(cls, url: str, *, cluster: bool = False, **options: Any) -> Self:
        """A store on the Redis (or Redis Cluster seed node) at `url`. Timeouts default to
        2 s to connect and 5 s per command; query parameters in the URL override them."""
        timeouts = {"socket_connect_timeout": 2.0, "socket_timeout": 5.0}
        parts = urlsplit(url)
        where = f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
        if cluster:
            client = redis.cluster.RedisCluster.from_url(url, **timeouts)
            return cls(client, target=f"redis cluster at {where}", **options)
        client = redis.Redis.from_url(url, **timeouts)
        return cls(client, target=f"redis at {where}{parts.path or '/0'}", **options)

    @classmethod
    def from_settings(cls) -> Self:
        if not settings.REDIS_URL:
            raise ImproperlyConfigured("LARDER_ONLINE_STORE=redis needs REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
        return cls.from_url(settings.REDIS_URL, cluster=getattr(settings, "LARDER_REDIS_CLUSTER", False))

    def describe(self) -> str:
        return self.target or "redis"

    # --- writes ------------------------------------------------------------------

    def write_batch(self, view: ViewKey, rows: OnlineRows) -> WriteResult:
        if not len(rows):
            return WriteResult(0, 0)
        keys = encode_entity_keys(view.join_keys, rows.entity_keys)
        events = [to_micros(ts) for ts in rows.event_timestamps]
        keep = latest_per_entity(keys, events)
        # Everything is encoded before anything is sent: a bad value writes nothing.
        columns = [[encode_value(column[i]) for i in keep] for column in rows.features.values()]
        hashes = [hash_key(view.project, keys[i]) for i in keep]
        written = self._write(view, list(rows.features), hashes, [events[i] for i in keep], columns)
        return WriteResult(written, len(rows) - written)

    def write_arrow(self, view: ViewKey, batch: pa.RecordBatch | pa.Table, features: Sequence[str]) -> WriteResult:
        """Columnar write: values encoded a column at a time (codec.encode_column), keys
        of one integer join key built from its digits; same bytes as `write_batch`."""
        features = list(features)
        check_columns(batch, view, features)
        n = batch.num_rows
        if n == 0:
            return WriteResult(0, 0)
        events = event_micros(batch, view)
        hashes = self._arrow_hashes(view, batch)
        columns = [encode_column(batch.column(name)) for name in features]
        if len(set(hashes)) < n:  # pull_latest gives one row per entity; anyone else may not
            keep = latest_per_entity(hashes, events)
            hashes, events = [hashes[i] for i in keep], [events[i] for i in keep]
            columns = [[column[i] for i in keep] for column in columns]
        written = self._write(view, features, hashes, events, columns)
        return WriteResult(written, n - written)

    @staticmethod
    def _arrow_hashes(view: ViewKey, batch: pa.RecordBatch | pa.Table) -> list[bytes] | list[str]:
        """The hash key of every row: one integer join key straight from its digits (the
        canonical form of an int is its decimal text), any other through keys.py."""
        if len(view.join_keys) == 1 and pa.types.is_integer(batch.schema.field(view.join_keys[0]).type):
            (name,) = view.join_keys
            prefix = hash_key(view.project, f"{name}=").encode()[:-1]
            return [prefix + digits + b"}" for digits in int_text_column(batch.column(name))]
        if not view.join_keys:
            return [hash_key(view.project, "")] * batch.num_rows
        columns = {key: batch.column(key).to_pylist() for key in view.join_keys}
        return [hash_key(view.project, key) for key in encode_entity_keys(view.join_keys, columns)]

    def _write(
        self,
        view: ViewKey,
        features: list[str],
        hashes: Sequence[bytes | str],
        events: Sequence[int],
        columns: list[list[bytes]],
    ) -> int:
        """Write one row per (distinct) hash key, latest-wins; returns how many were applied."""
        ts_field = f"_ts:{view.name}"
        fields = [f"{view.name}:{name}" for name in features]
        with _redis_errors(self):
            if self.write_mode == "check_then_set":
                written = 0
                for start in range(0, len(hashes), self.chunk_size):
                    part = slice(start, start + self.chunk_size)
                    written += self._check_then_set(ts_field, fields, hashes[part], events[part], columns, part)
                return written
            step = self._keys_per_script
            head: list[Any] = [ts_field, len(fields), *fields]

            def calls() -> Iterator[tuple[Sequence[bytes | str], list[Any]]]:
                for start in range(0, len(hashes), step):
                    part = slice(start, start + step)
                    values = chain.from_iterable(zip(events[part], *(column[part] for column in columns), strict=True))
                    yield hashes[part], [*head, *values]

            return sum(self._run_script(WRITE_IF_NEWER, calls()))

    def _check_then_set(
        self,
        ts_field: str,
        fields: list[str],
        hashes: Sequence[bytes | str],
        events: Sequence[int],
        columns: list[list[bytes]],
        part: slice,
    ) -> int:
        """Two round trips: read the stored times, then write the newer rows (racy, see module docstring)."""
        pipe = self.client.pipeline(transaction=False)
        for key in hashes:
            pipe.execute_command("HMGET", key, ts_field)
        stored = pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        newer = 0
        for i, (key, ts, (current,)) in enumerate(zip(hashes, events, stored, strict=True)):
            if current is None or int(current) < ts:
                row = part.start + i
                pairs = [item for j, field in enumerate(fields) for item in (field, columns[j][row])]
                pipe.execute_command("HSET", key, ts_field, ts, *pairs)
                newer += 1
        if newer:
            pipe.execute()
        return newer

    @property
    def _keys_per_script(self) -> int:
        # A cluster script call may only touch keys of one slot: one entity per call there.
        return 1 if isinstance(self.client, redis.cluster.RedisCluster) else self.script_keys

    def _run_script(self, script: _Script, calls: Iterable[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """EVALSHA the script once per (keys, args); load it on NOSCRIPT and retry those.

        On a single Redis the calls are streamed on one connection: sent a chunk
        (`chunk_size` keys) at a time as soon as they are packed, the replies read at
        the end, so the server runs chunk i while this process packs chunk i+1, and
        nothing waits for a reply in between (replies are integers: nothing piles up).
        A cluster client pipelines them, `chunk_size` calls per round trip (its pipeline
        routes each call to its slot's node)."""
        if isinstance(self.client, redis.cluster.RedisCluster):
            sent = list(calls)
            results: list[Any] = []
            for start in range(0, len(sent), self.chunk_size):
                pipe = self.client.pipeline(transaction=False)
                for keys, args in sent[start : start + self.chunk_size]:
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                results += pipe.execute(raise_on_error=False)
        else:
            sent = []
            results = self._stream(script, calls, sent)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            self.client.script_load(script.source)
            for i, result in zip(missing, self._run_script(script, [sent[i] for i in missing]), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _stream(self, script: _Script, calls: Iterable[tuple[Sequence[Any], Sequence[Any]]], sent: list) -> list[Any]:
        """Send the calls on one pooled connection, one socket write per `chunk_size` keys,
        then read every reply (errors as values)."""
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            packed: list[bytes] = []
            keys_packed = 0
            for keys, args in calls:
                sent.append((keys, args))
                command = ("EVALSHA", script.sha, len(keys), *keys, *args)
                packed += [pack_command(command)] if pack_command else conn.pack_command(*command)
                keys_packed += len(keys)
                if keys_packed >= self.chunk_size:
                    conn.send_packed_command([b"".join(packed)], False)  # one write (one per list item)
                    packed, keys_packed = [], 0
            if packed:
                conn.send_packed_command([b"".join(packed)], False)
            results: list[Any] = []
            for _ in sent:
                try:
                    results.append(conn.read_response())
                except redis.exceptions.ResponseError as exc:
                    results.append(exc)
        except BaseException:
            conn.disconnect()  # replies may be left unread: never hand this socket to anyone else
            raise
        finally:
            pool.release(conn)
        return results

    # --- reads -------------------------------------------------------------------

    def read(
        self, view: ViewKey, entity_keys: Sequence[Mapping[str, Any]], features: Sequence[str]
    ) -> list[OnlineRow | None]:
        keys = [encode_entity_key(view.join_keys, entity) for entity in entity_keys]
        distinct = list(dict.fromkeys(keys))
        names = list(features)
        fields = [f"_ts:{view.name}", *(f"{view.name}:{name}" for name in names)]
        found: dict[str, OnlineRow] = {}
        with _redis_errors(self):
            for chunk in _chunks(distinct, self.chunk_size):
                replies = self._hmget([hash_key(view.project, key) for key in chunk], fields)
                found.update(_decode_replies(chunk, replies, names))
        return [found.get(key) for key in keys]

    def _hmget(self, hashes: list[str], fields: list[str]) -> list[list[bytes | None]]:
        """HMGET of the fields of every hash: one round trip (a cluster: a plain command or
        redis-py's pipeline, which routes by slot; else: the commands packed by hiredis and
        sent on one pooled connection, skipping the client's per-command Python work)."""
        cluster = isinstance(self.client, redis.cluster.RedisCluster)
        if len(hashes) == 1 and (cluster or pack_command is None):
            return [self.client.execute_command("HMGET", hashes[0], *fields)]
        if cluster or pack_command is None:
            pipe = self.client.pipeline(transaction=False)
            for key in hashes:
                pipe.execute_command("HMGET", key, *fields)
            return pipe.execute()
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([b"".join([pack_command(("HMGET", key, *fields)) for key in hashes])], False)
            return [conn.read_response() for _ in hashes]
        except BaseException:
            conn.disconnect()  # replies may be left unread: never hand this socket to anyone else
            raise
        finally:
            pool.release(conn)

    # --- admin -------------------------------------------------------------------

    def _project_pages(self, project: str) -> Iterator[list[bytes]]:
        """The project's hashes, a SCAN page at a time (every primary of a cluster)."""
        page: list[bytes] = []
        for key in self.client.scan_iter(match=f"{{{_glob_escape(project)}:*", count=self.scan_count):
            page.append(key)
            if len(page) >= self.scan_count:
                yield page
                page = []
        if page:
            yield page

    def delete_view(self, view: ViewKey) -> int:
        args = [f"{view.name}:", f"_ts:{view.name}"]
        deleted = 0
        with _redis_errors(self):
            for page in self._project_pages(view.project):
                calls = [(group, args) for group in _chunks(page, self._keys_per_script)]
                deleted += sum(self._run_script(DELETE_VIEW_FIELDS, calls))
        return deleted

    def count(self, view: ViewKey) -> int:
        ts_field = f"_ts:{view.name}"
        total = 0
        with _redis_errors(self):
            for page in self._project_pages(view.project):
                pipe = self.client.pipeline(transaction=False)
                for key in page:
                    pipe.execute_command("HEXISTS", key, ts_field)
                total += sum(1 for exists in pipe.execute() if exists)
        return total

    def ping(self) -> None:
        with _redis_errors(self):
            self.client.ping()
