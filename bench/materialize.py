"""Materialization benchmark (issue 6): the historical-retrieval workload into Redis with
Larder (real Celery workers, 1 and 2), Feast 0.67's materialize (its local engine, same
Parquet, same Redis), and raw pipelined Redis writes of the same rows as the ceiling.

    .venv/bin/python bench/materialize.py                 # 10M feature rows (and 1M for memory)
    options: --sources 1000000,10000000 --repeat 2 --feast-timeout 1800 --feast-memory-cap-gb 12
             --skip-feast --redis 127.0.0.1:6379 --database-url sqlite:///... (the registry)

Workload: bench/historical.py's feature rows (10 features over 100,000 drivers, 30 days,
2% late corrections), reused from bench/out/historical/. Window: the whole 30 days, so
every run reads every row and writes the latest row of each of the 100,000 drivers.

Runs (each in its own processes; Redis databases 7-10 are flushed before each):
- Larder, N workers: a registry (SQLite under bench/out/materialize/, or --database-url)
  with the workload applied as a feature repo; N `celery -A larder worker --pool=solo`
  processes on a Redis broker (db 9), the online store on Redis (db 10); the job is
  started with `manage.py materialize START END --partitions P --async --wait`. Time:
  the job row's created_at to finished_at (queued to interval recorded). Memory: each
  worker's peak RSS (VmHWM), the largest reported.
- Feast 0.67 (.feast-venv, bench/materialize_feast.py): `FeatureStore.materialize` (what
  `feast materialize` runs) into Redis db 8; killed at --feast-timeout or the memory cap.
- Raw: the latest row per driver computed with one DuckDB query (timed apart, as
  "raw DuckDB latest": the read floor), then written with pipelined HSETs (1,000 per
  round trip) to Redis db 7: the write ceiling; and the two together, a hand-written
  read-then-write script.

rows/s is source rows in the window per second (every run reads the same 10M rows);
"written" is entities written online.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.historical import (  # noqa: E402 - after the path tweak
    DAYS,
    DTYPES,
    FEATURES,
    START_US,
    label,
    run_child,
    source_file,
)

OUT = ROOT / "bench" / "out" / "materialize"
FEAST_PYTHON = ROOT / ".feast-venv" / "bin" / "python"
CELERY = str(Path(sys.executable).with_name("celery"))
START = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=START_US)
END = START + timedelta(days=DAYS)
DB_RAW, DB_FEAST, DB_BROKER, DB_LARDER = 7, 8, 9, 10


# -- Larder ---------------------------------------------------------------------------------


def larder_env(redis: str, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "larder.settings",
        "LARDER_DEBUG": "1",
        "DATABASE_URL": database_url,
        "LARDER_ONLINE_STORE": "redis",
        "REDIS_URL": f"redis://{redis}/{DB_LARDER}",
        "CELERY_BROKER_URL": f"redis://{redis}/{DB_BROKER}",
        "CELERY_RESULT_BACKEND": f"redis://{redis}/{DB_BROKER}",
        "LARDER_MATERIALIZE_MAX_PARTITIONS": "32",
        "LARDER_LOG_LEVEL": "WARNING",
    }


def write_repo(folder: Path, sources: dict[int, Path]) -> None:
    """One view per source size (driver_stats_10m, driver_stats_1m), same entity and features."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    schema = [{"name": f, "dtype": d} for f, d in zip(FEATURES, DTYPES, strict=True)]
    definition = {
        "project": {"name": "bench"},
        "entities": [{"name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"}],
        "data_sources": [
            {
                "name": f"rows_{label(n).lower()}",
                "kind": "file",
                "path": str(path),
                "timestamp_field": "event_timestamp",
                "created_timestamp_column": "created",
            }
            for n, path in sources.items()
        ],
        "feature_views": [
            {
                "name": f"driver_stats_{label(n).lower()}",
                "entities": ["driver"],
                "source": f"rows_{label(n).lower()}",
                "ttl": "2d",
                "schema": schema,
            }
            for n in sources
        ],
    }
    (folder / "repo.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))


def manage(env: dict[str, str], *args: str, timeout: float = 3600) -> str:
    done = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def flush(redis: str, *dbs: int) -> None:
    import redis as redis_py

    host, port = redis.split(":")
    for db in dbs:
        redis_py.Redis(host=host, port=int(port), db=db).flushdb()


def peak_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_larder(
    env: dict[str, str], redis: str, view: str, workers: int, partitions: int, by: str, timeout: float
) -> dict:
    """One job on `workers` fresh worker processes; time from the job row, memory from the workers."""
    flush(redis, DB_BROKER, DB_LARDER)
    procs = []
    logs = OUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(workers):
        log = open(logs / f"worker{i}.log", "wb")  # noqa: SIM115 - closed below
        args = [CELERY, "-A", "larder", "worker", "-n", f"bench{i}@%h", "--pool=solo", "--loglevel=INFO"]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        worker = subprocess.Popen(  # noqa: S603 - our own celery
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append((worker, log, logs / f"worker{i}.log"))
    try:
        deadline = time.monotonic() + 120
        for proc, _, path in procs:
            while "ready." not in path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
        manage(
            env, "materialize", START.isoformat(), END.isoformat(), "--views", view, "--partitions", str(partitions),
            "--partition-by", by, "--async", "--wait", "--no-progress", timeout=timeout,
        )  # fmt: skip
        job = json.loads(manage(env, "shell", "-c", JOB_INFO.replace("VIEW", view)).strip().splitlines()[-1])
        peaks = [peak_rss(proc.pid) for proc, _, _ in procs]
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, log, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    if job["state"] != "SUCCEEDED":
        return {"error": f"job {job['state']}: {job['error'][:200]}", "peak_mb": max(peaks) / 1e6}
    return {
        "seconds": job["seconds"],
        "rows_read": job["rows_read"],
        "written": count_entities(redis, DB_LARDER),
        "peak_mb": max(peaks) / 1e6,
        "workers_used": job["workers"],
    }


JOB_INFO = """
import json
from materialization.models import MaterializationJob
job = MaterializationJob.objects.filter(view_name="VIEW").latest("pk")
print(json.dumps({"state": job.state, "error": job.error, "rows_read": job.rows_read,
    "seconds": (job.finished_at - job.created_at).total_seconds() if job.finished_at else None,
    "workers": sorted({p.worker.split("@")[0] for p in job.partitions.all()})}))
"""


def count_entities(redis: str, db: int) -> int:
    """Entity hashes in a Larder online database (`{project:key}`), not Celery's result keys."""
    import redis as redis_py

    host, port = redis.split(":")
    client = redis_py.Redis(host=host, port=int(port), db=db)
    return sum(1 for _ in client.scan_iter(match="{bench:*", count=10_000))


# -- raw ------------------------------------------------------------------------------------------


def raw_child(source: str, redis: str) -> dict:
    """The latest row per driver with one DuckDB query, then pipelined HSETs."""
    import duckdb
    import redis as redis_py

    started = time.perf_counter()
    con = duckdb.connect(config={"threads": int(os.environ.get("LARDER_DUCKDB_THREADS", "2"))})
    columns = ", ".join(FEATURES)
    latest = con.sql(
        f"SELECT driver_id, arg_max(struct_pack({columns}, ts := epoch_us(event_timestamp)), "
        "(event_timestamp, created)) AS r FROM read_parquet($p) "
        "WHERE event_timestamp BETWEEN $s AND $e GROUP BY driver_id",
        params={"p": source, "s": START, "e": END},
    ).fetchall()
    read_seconds = time.perf_counter() - started
    host, port = redis.split(":")
    client = redis_py.Redis(host=host, port=int(port), db=DB_RAW)
    client.flushdb()
    names = [f"driver_stats:{f}" for f in FEATURES]
    started = time.perf_counter()
    for offset in range(0, len(latest), 1000):
        pipe = client.pipeline(transaction=False)
        for driver_id, row in latest[offset : offset + 1000]:
            mapping = {name: str(row[f]) for name, f in zip(names, FEATURES, strict=True)}
            mapping["_ts:driver_stats"] = row["ts"]
            pipe.hset(f"{{bench:driver_id={driver_id}}}", mapping=mapping)
        pipe.execute()
    write_seconds = time.perf_counter() - started
    return {"read_seconds": read_seconds, "seconds": write_seconds, "written": client.dbsize()}


# -- the run --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default="1000000,10000000", help="source sizes (the largest is the main case)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each Larder/raw case; best kept")
    parser.add_argument("--feast-timeout", type=float, default=1800)
    parser.add_argument("--feast-memory-cap-gb", type=float, default=12)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--redis", default="127.0.0.1:6379")
    parser.add_argument("--database-url", default="", help="the registry (default: SQLite under bench/out/)")
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "REDIS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(raw_child(*args.child)))
        return 0

    sizes = sorted(int(x) for x in args.sources.split(","))
    sources = {n: source_file(n) for n in sizes}
    main_size = sizes[-1]
    OUT.mkdir(parents=True, exist_ok=True)
    registry = OUT / "registry.sqlite3"
    registry.unlink(missing_ok=True)
    database_url = args.database_url or f"sqlite:///{registry}"
    env = larder_env(args.redis, database_url)
    write_repo(OUT / "repo", sources)
    manage(env, "migrate", "-v0")
    manage(env, "apply", str(OUT / "repo"))
    print(f"window {START.isoformat()} .. {END.isoformat()}; {os.cpu_count()} CPUs; "
          f"DuckDB threads {os.environ.get('LARDER_DUCKDB_THREADS', '2')}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip

    cases: list[tuple[str, int, object]] = []
    for n in sizes:
        view = f"driver_stats_{label(n).lower()}"
        cases.append(("Larder, 1 worker, 1 partition", n, ("larder", view, 1, 1, "time")))
        if n == main_size:
            cases.append(("Larder, 2 workers, 2 time slices", n, ("larder", view, 2, 2, "time")))
            cases.append(("Larder, 2 workers, 2 entity buckets", n, ("larder", view, 2, 2, "entity")))
        cases.append(("raw DuckDB latest + pipelined HSET", n, ("raw",)))
        if not args.skip_feast and FEAST_PYTHON.exists():
            cases.append(("Feast 0.67 materialize (local engine)", n, ("feast",)))
    results = []
    for name, n, spec in cases:
        best = None
        repeat = 1 if spec[0] == "feast" else args.repeat
        for attempt in range(repeat):
            if spec[0] == "larder":
                _, view, workers, partitions, by = spec
                try:
                    result = run_larder(env, args.redis, view, workers, partitions, by, args.timeout)
                except Exception as exc:  # reported in the table, the run goes on
                    result = {"error": f"failed: {str(exc).strip().splitlines()[-1][:200]}", "peak_mb": 0}
            elif spec[0] == "raw":
                argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(sources[n]), args.redis]
                result = run_child(argv, args.timeout)
            else:
                host = args.redis
                argv = [str(FEAST_PYTHON), str(ROOT / "bench" / "materialize_feast.py"), str(sources[n])]
                argv += [
                    START.replace(tzinfo=None).isoformat(),
                    END.replace(tzinfo=None).isoformat(),
                    host,
                    str(DB_FEAST),
                ]
                result = run_child(argv, args.feast_timeout, int(args.feast_memory_cap_gb * 1e9))
                if "entities" in result:
                    result["written"] = result.pop("entities")
            result = {"case": name, "rows": n, "attempt": attempt + 1, **result}
            print(json.dumps(result), flush=True)
            if best is None or ("seconds" in result and ("seconds" not in best or result["seconds"] < best["seconds"])):
                best = result
            if "error" in result:
                break
        results.append(best)
    flush(args.redis, DB_RAW, DB_FEAST, DB_BROKER, DB_LARDER)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(table_markdown(results, main_size))
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    return 0


def table_markdown(results: list[dict], main_size: int) -> str:
    lines = [
        "| source rows | run | time (s) | rows/s (source) | written | peak RSS (MB) | time / Larder 1 worker |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    base = {r["rows"]: r for r in results if r["case"].startswith("Larder, 1 worker, 1 partition") and "seconds" in r}
    for r in results:
        b = base.get(r["rows"])
        if "seconds" in r:
            seconds = r["seconds"] + r.get("read_seconds", 0.0)
            detail = f" (read {r['read_seconds']:.2f} + write {r['seconds']:.2f})" if "read_seconds" in r else ""
            ratio = f"{seconds / b['seconds']:.2f}x" if b else ""
            lines.append(
                f"| {label(r['rows'])} | {r['case']} | {seconds:.2f}{detail} | {r['rows'] / seconds:,.0f} "
                f"| {r.get('written', 0):,} | {r['peak_mb']:.0f} | {ratio} |"
            )
        else:
            lines.append(f"| {label(r['rows'])} | {r['case']} | {r['error']} | | | {r['peak_mb']:.0f} | |")
    b = base.get(main_size)
    feast = next((r for r in results if r["rows"] == main_size and r["case"].startswith("Feast")), None)
    raw = next((r for r in results if r["rows"] == main_size and r["case"].startswith("raw")), None)
    notes = []
    if b and feast:
        if "seconds" in feast:
            notes.append(f"Larder (1 worker) vs Feast: {feast['seconds'] / b['seconds']:.1f}x Feast's rows/s")
        else:
            notes.append(f"Feast did not finish ({feast['error']})")
    if b and raw and "seconds" in raw:
        notes.append(
            f"Larder (1 worker) time / raw pipelined HSET of the same {raw.get('written', 0):,} rows: "
            f"{b['seconds'] / raw['seconds']:.1f}x; / raw DuckDB read + HSET: "
            f"{b['seconds'] / (raw['seconds'] + raw['read_seconds']):.2f}x"
        )
    return "\n".join([*lines, "", *notes])


if __name__ == "__main__":
    sys.exit(main())
