"""The online store contract on real Redis (db 15, flushed per test), both write modes,
and on a Redis Cluster (REDIS_CLUSTER_URL, or three local nodes this module starts when
`redis-server` is installed), plus what only Redis has: scripts reloaded after SCRIPT
FLUSH, concurrent writers, the exact key layout, an unreachable server."""

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from redis.cluster import RedisCluster

from serving.online import OnlineStoreError, OnlineStoreUnavailable, ViewKey
from serving.online.redis import RedisOnlineStore
from tests.online_contract import (
    DRIVERS,
    T0,
    OnlineStoreContract,
    arrow_batch,
    arrow_rows,
    one_feature,
    rows_of,
    value_of,
    write_concurrently,
)

pytestmark = pytest.mark.integration


class CountingConnection(redis.Connection):
    """Counts socket writes: a pipeline is one, a plain command is one."""

    sends = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sends += 1
        return super().send_packed_command(command, check_health)


class _Count:
    count = 0


@pytest.fixture
def test_db_url(redis_url) -> str:
    """The configured Redis, database 15: the suite flushes it, so never the app's."""
    return urlunsplit(urlsplit(redis_url)._replace(path="/15"))


@pytest.fixture
def client(test_db_url):
    client = redis.Redis.from_url(test_db_url, connection_class=CountingConnection)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def round_trips():
    @contextmanager
    def counting():
        counter = _Count()
        before = CountingConnection.sends
        yield counter
        counter.count = CountingConnection.sends - before

    return counting


class TestRedisOnlineStore(OnlineStoreContract):
    @pytest.fixture(params=["lua", "check_then_set"])
    def store(self, request, client):
        return RedisOnlineStore(client, write_mode=request.param)


@pytest.fixture
def store(client) -> RedisOnlineStore:
    return RedisOnlineStore(client)


def test_layout_is_one_hash_per_entity_and_project(store, client):
    trips = ViewKey("demo", "trips", ("customer_id", "driver_id"))
    store.write_batch(trips, rows_of([{"driver_id": 7, "customer_id": "c"}], {"n": [3], "s": ["x"]}, [T0]))
    store.write_batch(
        ViewKey("demo", "other", ("customer_id", "driver_id")),
        rows_of([{"driver_id": 7, "customer_id": "c"}], {"n": [4]}, [T0]),
    )
    assert client.keys("*") == [b'{demo:customer_id="c",driver_id=7}']
    stored = client.hgetall(b'{demo:customer_id="c",driver_id=7}')
    micros = b"1740830400123456"  # T0 in epoch microseconds
    assert stored == {
        b"_ts:trips": micros,
        b"trips:n": b"3",
        b"trips:s": b'"x"',
        b"_ts:other": micros,
        b"other:n": b"4",
    }


def test_lua_write_is_one_round_trip_per_chunk(client, round_trips):
    store = RedisOnlineStore(client, chunk_size=1000)
    store.ping()  # connects (the handshake is not a round trip of the write)
    with round_trips() as trips:
        store.write_batch(DRIVERS, one_feature(range(2500), range(2500), [T0] * 2500))
    assert trips.count == 3
    with round_trips() as trips:
        store.read(DRIVERS, [{"driver_id": i} for i in range(2500)], ["v"])
    assert trips.count == 3
    with round_trips() as trips:
        store.read(DRIVERS, [{"driver_id": 1}, {"driver_id": 1}], ["v"])
    assert trips.count == 1


def test_scripts_are_reloaded_after_script_flush(store, client):
    store.write_batch(DRIVERS, one_feature([1], ["a"], [T0]))
    client.script_flush()
    store.write_batch(DRIVERS, one_feature([1, 2], ["b", "c"], [T0 + timedelta(1)] * 2))
    client.script_flush()
    assert store.delete_view(DRIVERS) == 2
    assert client.dbsize() == 0


def test_a_view_wider_than_one_lua_unpack(store):
    """Lua's unpack() has a stack limit: the scripts split HSET/HDEL past 1,000 arguments."""
    features = {f"feature_{j}": [j, -j] for j in range(1500)}
    store.write_batch(DRIVERS, rows_of([{"driver_id": 1}, {"driver_id": 2}], features, [T0, T0]))
    first, second = store.read(DRIVERS, [{"driver_id": 1}, {"driver_id": 2}], list(features))
    assert first.values == {name: values[0] for name, values in features.items()}
    assert second.values == {name: values[1] for name, values in features.items()}
    assert store.delete_view(DRIVERS) == 2
    assert store.client.dbsize() == 0


def test_concurrent_writers_end_with_the_newest_value(store):
    write_concurrently(store, DRIVERS, entities=300, rounds=40)


def test_concurrent_writers_through_write_arrow_end_with_the_newest_value(store):
    write_concurrently(store, DRIVERS, entities=300, rounds=40, arrow=True)


def test_write_arrow_writes_the_bytes_write_batch_writes(client):
    """The columnar encoding (codec.encode_column) is byte for byte the per-value one."""
    table = arrow_batch()
    names = [n for n in table.column_names if n not in ("driver_id", "event_timestamp", "created")]
    RedisOnlineStore(client).write_batch(ViewKey("rows", "v", ("driver_id",)), arrow_rows(table, names))
    RedisOnlineStore(client).write_arrow(ViewKey("cols", "v", ("driver_id",)), table, names)
    rows = {key[len("{rows") :]: client.hgetall(key) for key in client.scan_iter(match="{rows:*")}
    cols = {key[len("{cols") :]: client.hgetall(key) for key in client.scan_iter(match="{cols:*")}
    assert len(rows) == 5
    assert rows == cols


def test_a_failed_call_leaves_the_connection_usable(store, client):
    """A reply left unread on a streamed connection would answer the next caller: the
    connection is dropped instead, and the store keeps working."""
    client.set("{proj:driver_id=5}", "not a hash")
    with pytest.raises(OnlineStoreError, match="WRONGTYPE"):
        store.write_batch(DRIVERS, one_feature(range(10), range(10), [T0] * 10))
    with pytest.raises(OnlineStoreError, match="WRONGTYPE"):
        store.read(DRIVERS, [{"driver_id": i} for i in range(10)], ["v"])
    client.delete("{proj:driver_id=5}")
    later = [T0 + timedelta(microseconds=1)] * 10  # keys before the bad one were written (no rollback in Redis)
    assert store.write_batch(DRIVERS, one_feature(range(10), range(10, 20), later)).written == 10
    assert [value_of(store, DRIVERS, i) for i in range(10)] == list(range(10, 20))


def test_reads_mix_complete_and_partial_rows_in_one_chunk(store):
    both = {"a": [1, [2]], "b": ["x", None]}
    store.write_batch(DRIVERS, rows_of([{"driver_id": 1}, {"driver_id": 2}], both, [T0] * 2))
    store.write_batch(DRIVERS, rows_of([{"driver_id": 3}], {"a": [3]}, [T0]))  # an older version of the view
    rows = store.read(DRIVERS, [{"driver_id": i} for i in (3, 1, 2, 4)], ["a", "b"])
    expected = [{"a": 3}, {"a": 1, "b": "x"}, {"a": [2], "b": None}, None]
    assert [None if r is None else r.values for r in rows] == expected


def test_unreachable_redis_fails_ping_and_calls_with_the_address():
    store = RedisOnlineStore.from_url("redis://:secret@127.0.0.1:1/0")
    with pytest.raises(OnlineStoreUnavailable, match=r"127\.0\.0\.1:1\b") as failure:
        store.ping()
    assert "secret" not in str(failure.value)
    with pytest.raises(OnlineStoreUnavailable):
        store.read(DRIVERS, [{"driver_id": 1}], ["v"])


def test_from_url_reads_and_writes(test_db_url, client):
    store = RedisOnlineStore.from_url(test_db_url)
    store.write_batch(DRIVERS, one_feature([1], [1.5], [T0]))
    assert value_of(store, DRIVERS, 1) == 1.5


# --- Redis Cluster ------------------------------------------------------------------


def _free_port_pair() -> int:
    """A port p with p and its cluster bus port p + 10000 both free."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 55535:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@pytest.fixture(scope="module")
def redis_cluster_url(tmp_path_factory):
    """REDIS_CLUSTER_URL, or a three-node cluster started here (and stopped after the module)."""
    if os.environ.get("REDIS_CLUSTER_URL"):
        yield os.environ["REDIS_CLUSTER_URL"]
        return
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not (server and cli):
        pytest.skip("Redis Cluster: set REDIS_CLUSTER_URL, or install redis-server to start a local one")
    root = tmp_path_factory.mktemp("redis-cluster")
    ports = [_free_port_pair() for _ in range(3)]
    nodes = []
    try:
        for port in ports:
            (root / str(port)).mkdir()
            args = [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
            args += ["--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no"]
            nodes.append(subprocess.Popen(args, cwd=root / str(port), stdout=subprocess.DEVNULL))  # noqa: S603
        for port in ports:
            for _ in range(100):
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.02)
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0"]
        subprocess.run([*create, "--cluster-yes"], check=True, capture_output=True, timeout=60)  # noqa: S603
        for _ in range(200):
            if all(redis.Redis(port=p).cluster("info").get("cluster_state") == "ok" for p in ports):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            node.wait(timeout=10)


class CountingCluster(RedisCluster):
    """A cluster client counting round trips: each command, and each pipeline execution
    (a cluster pipeline talks to every node it needs in parallel: one round trip)."""

    trips = 0

    def execute_command(self, *args, **kwargs):
        CountingCluster.trips += 1
        return super().execute_command(*args, **kwargs)

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def counted(*args, **kwargs):
            CountingCluster.trips += 1
            return execute(*args, **kwargs)

        pipe.execute = counted
        return pipe


class TestRedisClusterOnlineStore(OnlineStoreContract):
    """The same contract through RedisCluster (hash tags keep each entity in one slot)."""

    @pytest.fixture
    def store(self, redis_cluster_url):
        client = CountingCluster.from_url(redis_cluster_url)
        client.flushall()
        yield RedisOnlineStore(client)
        client.flushall()
        client.close()

    @pytest.fixture
    def round_trips(self):
        @contextmanager
        def counting():
            counter = _Count()
            before = CountingCluster.trips
            yield counter
            counter.count = CountingCluster.trips - before

        return counting

    def test_scripts_are_reloaded_on_every_primary(self, store):
        store.write_batch(DRIVERS, one_feature(range(100), range(100), [T0] * 100))
        store.client.script_flush()
        assert store.write_batch(DRIVERS, one_feature(range(100), range(100), [T0 + timedelta(1)] * 100)).written == 100
        store.client.script_flush()
        assert store.delete_view(DRIVERS) == 100

    def test_concurrent_writers_end_with_the_newest_value(self, store):
        write_concurrently(store, DRIVERS, entities=200, rounds=20)

    def test_from_url_builds_a_cluster_client(self, store, redis_cluster_url):
        clustered = RedisOnlineStore.from_url(redis_cluster_url, cluster=True)
        assert isinstance(clustered.client, RedisCluster)
        assert clustered.describe().startswith("redis cluster at 127.0.0.1:")
        clustered.write_batch(DRIVERS, one_feature([1, 2], ["a", "b"], [T0, T0]))
        assert [value_of(store, DRIVERS, i) for i in (1, 2)] == ["a", "b"]
        clustered.client.close()
