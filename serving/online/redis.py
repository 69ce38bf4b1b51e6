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

Writes, per chunk of `chunk_size` entities (the batch's latest row per entity first):
- `lua` (default): a compare-and-set script (EVALSHA) that writes an entity's fields
  only when its event time is newer than `_ts:<view>`, atomically on the server, so
  concurrent writers cannot let an older row win. One call covers `script_keys`
  entities (field names sent once per call), the calls of a chunk are pipelined: one
  round trip per chunk. On a cluster a call may only touch one slot, so there it is
  one call per entity (still pipelined, one round trip per chunk).
- `check_then_set`: a pipelined HMGET of `_ts:<view>`, then a pipelined HSET of the
  newer rows: two round trips per chunk, and a race (another writer between the two
  can have its newer row overwritten). Feast's way; kept for the benchmark.
Reads: one pipelined HMGET (`_ts:<view>` + the requested fields) per distinct entity,
one round trip per `chunk_size` entities (a single key skips the pipeline).
delete_view and count SCAN every hash of the project (`{<project>:*`, all primaries
in a cluster): O(entities of the project), one round trip per SCAN page plus one per
page for the HDEL script or HEXISTS checks. Admin and metrics work, not serving.
Scripts are not assumed loaded: a NOSCRIPT reply loads them and retries those calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import redis
import redis.cluster
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import NoScriptError

from .base import OnlineRow, OnlineRows, OnlineStore, OnlineStoreError, OnlineStoreUnavailable, ViewKey, WriteResult
from .codec import decode_value, encode_value, from_micros, to_micros
from .keys import encode_entity_key, encode_entity_keys, latest_per_entity

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
local written = 0
for k = 1, #KEYS do
  local at = 2 + n + (k - 1) * (n + 1)
  local ts = ARGV[at + 1]
  local stored = redis.call('HGET', KEYS[k], ts_field)
  if not stored or tonumber(stored) < tonumber(ts) then
    local args = {ts_field, ts}
    for j = 1, n do
      args[#args + 1] = ARGV[2 + j]
      args[#args + 1] = ARGV[at + 1 + j]
    end
    for i = 1, #args, 1000 do
      redis.call('HSET', KEYS[k], unpack(args, i, math.min(i + 999, #args)))
    end
    written = written + 1
  end
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
        fields = [f"{view.name}:{name}" for name in rows.features]
        columns = list(rows.features.values())
        # Everything is encoded before anything is sent: a bad value writes nothing.
        prepared = [
            (hash_key(view.project, keys[i]), [events[i], *(encode_value(column[i]) for column in columns)])
            for i in latest_per_entity(keys, events)
        ]
        ts_field = f"_ts:{view.name}"
        write = self._write_if_newer if self.write_mode == "lua" else self._check_then_set
        written = 0
        with _redis_errors(self):
            for chunk in _chunks(prepared, self.chunk_size):
                written += write(ts_field, fields, chunk)
        return WriteResult(written, len(rows) - written)

    def _write_if_newer(self, ts_field: str, fields: list[str], chunk: list[tuple[str, list[Any]]]) -> int:
        """One round trip: the compare-and-set script over groups of keys, pipelined."""
        calls = []
        for group in _chunks(chunk, self._keys_per_script):
            args: list[Any] = [ts_field, len(fields), *fields]
            for _, values in group:
                args += values
            calls.append(([key for key, _ in group], args))
        return sum(self._run_script(WRITE_IF_NEWER, calls))

    def _check_then_set(self, ts_field: str, fields: list[str], chunk: list[tuple[str, list[Any]]]) -> int:
        """Two round trips: read the stored times, then write the newer rows (racy, see module docstring)."""
        pipe = self.client.pipeline(transaction=False)
        for key, _ in chunk:
            pipe.execute_command("HMGET", key, ts_field)
        stored = pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        newer = 0
        for (key, (ts, *values)), (current,) in zip(chunk, stored, strict=True):
            if current is None or int(current) < ts:
                pairs = [item for pair in zip(fields, values, strict=True) for item in pair]
                pipe.execute_command("HSET", key, ts_field, ts, *pairs)
                newer += 1
        if newer:
            pipe.execute()
        return newer

    @property
    def _keys_per_script(self) -> int:
        # A cluster script call may only touch keys of one slot: one entity per call there.
        return 1 if isinstance(self.client, redis.cluster.RedisCluster) else self.script_keys

    def _run_script(self, script: _Script, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """EVALSHA the script once per (keys, args), pipelined; load it on NOSCRIPT and retry those."""
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        results = pipe.execute(raise_on_error=False)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            self.client.script_load(script.source)
            pipe = self.client.pipeline(transaction=False)
            for i in missing:
                keys, args = calls[i]
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            for i, result in zip(missing, pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
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
                if len(chunk) == 1:
                    replies = [self.client.execute_command("HMGET", hash_key(view.project, chunk[0]), *fields)]
                else:
                    pipe = self.client.pipeline(transaction=False)
                    for key in chunk:
                        pipe.execute_command("HMGET", hash_key(view.project, key), *fields)
                    replies = pipe.execute()
                for key, (ts, *values) in zip(chunk, replies, strict=True):
                    if ts is not None:
                        row = {name: decode_value(v) for name, v in zip(names, values, strict=True) if v is not None}
                        found[key] = OnlineRow(row, from_micros(int(ts)))
        return [found.get(key) for key in keys]

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
