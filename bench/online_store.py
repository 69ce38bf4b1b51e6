"""Micro-benchmark of the online stores' write and read paths, against raw redis-py.

    .venv/bin/python bench/online_store.py [--entities 100000] [--redis-url redis://127.0.0.1:6379/0]
                                           [--database-url postgres://postgres@127.0.0.1:5432/larder]
                                           [--redis-only]

Workload: N entities (Int64 `driver_id`) x 10 features of one view (3 Float32, 3 Int64,
2 Float64, 2 String). Writes all N rows through `write_batch` in batches of 10,000 (a
materialization chunk), then the same rows again (all skipped by latest-wins). Reads
random batches of 1 and of 100 keys, all 10 features, timing each `read` call.

Stores: `redis` with both write modes (`lua`: the compare-and-set script, one round
trip per 1,000 rows; `check_then_set`: HMGET then HSET, two; reads are the same code
for both); `sql` on a temporary SQLite file and, with --database-url, on PostgreSQL in
a database `larder_online_bench` (created and dropped), each in a child process.
Baseline: raw redis-py on the same data layout: pipelined HSET of pre-encoded fields,
and HMGET of the same hashes and fields (a direct command for one key, a pipeline for
100), with no key encoding, no decoding and no latest-wins check. The store's Redis
reads and the raw reads are timed interleaved on the same batches, so noise on a shared
machine hits both alike; the SQL stores' reads run later in their own processes.
Redis runs in database 14 of --redis-url, which is FLUSHED before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "larder_online_bench"
WRITE_BATCH = 10_000
WRITE_RUNS = 2
READ_BATCHES = {1: 4000, 100: 800}  # keys per batch -> timed batches
WARMUP = 50
T0 = datetime(2025, 3, 1, tzinfo=UTC)
FEATURES = [f"f32_{i}" for i in range(3)] + [f"i64_{i}" for i in range(3)]
FEATURES += [f"f64_{i}" for i in range(2)] + [f"str_{i}" for i in range(2)]


def workload(n: int) -> tuple[list[int], dict[str, list], list[datetime]]:
    rng = random.Random(42)

    def f32(x: float) -> float:
        return struct.unpack("<f", struct.pack("<f", x))[0]

    columns: dict[str, list] = {}
    for name in FEATURES:
        kind = name.split("_")[0]
        if kind == "f32":
            columns[name] = [f32(rng.random() * 100) for _ in range(n)]
        elif kind == "i64":
            columns[name] = [rng.randrange(-(2**62), 2**62) for _ in range(n)]
        elif kind == "f64":
            columns[name] = [rng.random() * 1e6 for _ in range(n)]
        else:
            columns[name] = [f"value-{rng.randrange(10**9)}" for _ in range(n)]
    return list(range(n)), columns, [T0 + timedelta(seconds=i) for i in range(n)]


def read_batches(n: int, size: int, count: int) -> list[list[int]]:
    rng = random.Random(size)
    return [rng.sample(range(n), size) for _ in range(count + WARMUP)]


def summarize(latencies: list[float], size: int) -> dict:
    timed = sorted(latencies[WARMUP:])
    return {
        "p50": timed[len(timed) // 2] * 1e3,
        "p99": timed[int(len(timed) * 0.99)] * 1e3,
        "keys_per_s": size * len(timed) / sum(timed),
    }


VIEW_NAME = "driver_stats"


def write_phase(store, n: int, reset, project: str = "bench") -> dict:
    """All rows through `write_batch` in batches, then the same rows again (all skipped);
    best of WRITE_RUNS, `reset()` emptying the store before each run."""
    from serving.online import OnlineRows, ViewKey

    view = ViewKey(project, VIEW_NAME, ("driver_id",))
    ids, columns, times = workload(n)
    batches = [
        OnlineRows({"driver_id": ids[part]}, {k: v[part] for k, v in columns.items()}, times[part])
        for part in (slice(start, start + WRITE_BATCH) for start in range(0, n, WRITE_BATCH))
    ]
    out: dict = {"write": float("inf"), "rewrite": float("inf")}
    for _ in range(WRITE_RUNS):
        reset()
        for label in ("write", "rewrite"):
            started = time.perf_counter()
            written = sum(store.write_batch(view, rows).written for rows in batches)
            out[label] = min(out[label], time.perf_counter() - started)
            assert written == (n if label == "write" else 0), (label, written)
    return out


def store_reader(store, project: str = "bench"):
    """read(batch of ids) through the store; the entity dicts are built outside the timing."""
    from serving.online import ViewKey

    view = ViewKey(project, VIEW_NAME, ("driver_id",))

    def prepare(ids: list[int]) -> list[dict]:
        return [{"driver_id": i} for i in ids]

    def read(entities: list[dict]) -> None:
        rows = store.read(view, entities, FEATURES)
        assert rows[0] is not None

    return prepare, read


def raw_reader(client, project: str = "raw"):
    """HMGET of the same fields through redis-py, nothing else: a direct command for one
    key, a pipeline for more (what the store does). Keys are built outside the timing."""
    fields = [f"_ts:{VIEW_NAME}", *(f"{VIEW_NAME}:{name}" for name in FEATURES)]

    def prepare(ids: list[int]) -> list[str]:
        return [f"{{{project}:driver_id={i}}}" for i in ids]

    def read(keys: list[str]) -> None:
        if len(keys) == 1:
            reply = [client.execute_command("HMGET", keys[0], *fields)]
        else:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command("HMGET", key, *fields)
            reply = pipe.execute()
        assert reply[0][0] is not None

    return prepare, read


def read_phase(readers: dict, n: int) -> dict[str, dict]:
    """Time every reader on the same random batches, interleaved (the order rotates per
    batch), so that noise from a shared machine hits all of them alike."""
    out: dict[str, dict] = {name: {} for name in readers}
    names = list(readers)
    for size, count in READ_BATCHES.items():
        latencies: dict[str, list[float]] = {name: [] for name in names}
        for turn, batch in enumerate(read_batches(n, size, count)):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                prepare, read = readers[name]
                args = prepare(batch)
                started = time.perf_counter()
                read(args)
                latencies[name].append(time.perf_counter() - started)
        for name in names:
            out[name][f"read_{size}"] = summarize(latencies[name], size)
    return out


def raw_write(client, n: int, project: str = "raw") -> float:
    """The write ceiling: pipelined HSET of pre-built keys and pre-encoded values, 1,000
    per round trip; best of WRITE_RUNS on an empty database."""
    from serving.online.codec import encode_value

    ids, columns, times = workload(n)
    keys = [f"{{{project}:driver_id={i}}}" for i in ids]
    fields = [f"_ts:{VIEW_NAME}", *(f"{VIEW_NAME}:{name}" for name in FEATURES)]
    encoded = [
        [str((times[i] - T0) // timedelta(microseconds=1))] + [encode_value(columns[f][i]) for f in FEATURES]
        for i in range(n)
    ]
    best = float("inf")
    for _ in range(WRITE_RUNS):
        client.flushdb()
        started = time.perf_counter()
        for start in range(0, n, 1000):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + 1000, n)):
                pairs = (x for pair in zip(fields, encoded[i], strict=True) for x in pair)
                pipe.execute_command("HSET", keys[i], *pairs)
            pipe.execute()
        best = min(best, time.perf_counter() - started)
    return best


def sql_worker(database_url: str, n: int) -> dict:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("LARDER_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "larder.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from serving.online import ViewKey
    from serving.online.sql import SqlOnlineStore

    call_command("migrate", verbosity=0)
    store = SqlOnlineStore()
    view = ViewKey("bench", VIEW_NAME, ("driver_id",))
    out = write_phase(store, n, lambda: store.delete_view(view))
    out.update(read_phase({"sql": store_reader(store)}, n)["sql"])
    out["vendor"] = connection.vendor
    connection.close()
    return out


def run_child(database_url: str, n: int) -> dict:
    cmd = [sys.executable, __file__, "--entities", str(n), "--worker", database_url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)  # noqa: S603 - our own script
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_postgres(url: str, n: int) -> dict | None:
    """Create the bench database on the server of `url`, run there, drop it; None if unreachable."""
    import psycopg

    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres")).replace("postgres://", "postgresql://", 1)
    try:
        admin = psycopg.connect(admin_url, autocommit=True)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL not reachable at {url}: {exc}".splitlines()[0], file=sys.stderr)
        return None
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
        try:
            return run_child(urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DB}")), n)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def tables(results: dict[str, dict], n: int) -> str:
    raw = results["raw redis-py"]
    results = {"raw redis-py": raw, **{name: r for name, r in results.items() if r is not raw}}
    lines = [
        f"Writes: {n:,} rows x {len(FEATURES)} features, batches of {WRITE_BATCH:,}",
        "",
        "| store | write (s) | rows/s | vs raw | re-write, all skipped (s) | rows/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        if "write" not in r:
            continue
        rewrite = f"{r['rewrite']:.2f} | {n / r['rewrite']:,.0f}" if "rewrite" in r else "- | -"
        lines.append(
            f"| {name} | {r['write']:.2f} | {n / r['write']:,.0f} | {raw['write'] / r['write']:.2f}x | {rewrite} |"
        )
    lines += [
        "",
        "Reads: random batches, all features; latency per call (ms); `vs raw` = raw / store",
        "(throughput) and store / raw (latency)",
        "",
        "| store | keys/batch | p50 (ms) | p99 (ms) | keys/s | keys/s vs raw | p50 vs raw | p99 vs raw |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in READ_BATCHES:
        for name, r in results.items():
            if f"read_{size}" not in r:
                continue
            s, b = r[f"read_{size}"], raw[f"read_{size}"]
            lines.append(
                f"| {name} | {size} | {s['p50']:.3f} | {s['p99']:.3f} | {s['keys_per_s']:,.0f} | "
                f"{s['keys_per_s'] / b['keys_per_s']:.2f}x | {s['p50'] / b['p50']:.2f}x | {s['p99'] / b['p99']:.2f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    parser.add_argument("--database-url", default="", help="also run the sql store on this PostgreSQL server")
    parser.add_argument("--redis-only", action="store_true", help="skip the sql stores")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.entities
    if args.worker:
        print(json.dumps(sql_worker(args.worker, n)))
        return

    import redis

    from serving.online import ViewKey
    from serving.online.redis import RedisOnlineStore

    client = redis.Redis.from_url(urlunsplit(urlsplit(args.redis_url)._replace(path="/14")))
    results: dict[str, dict] = {}
    try:
        cts = RedisOnlineStore(client, write_mode="check_then_set")
        results["redis (check_then_set)"] = write_phase(cts, n, client.flushdb)
        results["raw redis-py"] = {"write": raw_write(client, n)}  # flushes before each run
        # The lua store's runs clear only its own project: the raw hashes stay for the reads.
        store = RedisOnlineStore(client, write_mode="lua")
        view = ViewKey("bench", VIEW_NAME, ("driver_id",))
        results["redis (lua)"] = write_phase(store, n, lambda: store.delete_view(view))
        reads = read_phase({"raw redis-py": raw_reader(client), "redis": store_reader(store)}, n)
        results["raw redis-py"].update(reads["raw redis-py"])
        results["redis (reads)"] = reads["redis"]
    finally:
        client.flushdb()
    if not args.redis_only:
        with tempfile.TemporaryDirectory() as tmp:
            results["sql (SQLite file)"] = run_child(f"sqlite:///{tmp}/bench.sqlite3", n)
    if args.database_url and not args.redis_only:
        pg = run_postgres(args.database_url, n)
        if pg is not None:
            results["sql (PostgreSQL)"] = pg
    print(tables(results, n))


if __name__ == "__main__":
    main()
