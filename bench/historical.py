"""Historical retrieval benchmark (issue 5): Larder's DuckDB and PostgreSQL engines,
Feast 0.67's `file` offline store, and a raw DuckDB ASOF JOIN as the floor.

    .venv/bin/python bench/historical.py            # 1M and 10M feature rows x 100k and 1M entity rows
    .venv/bin/python bench/historical.py --quick    # 1M x 100k only
    options: --sources 1000000,10000000 --entities 100000,1000000 --repeat 3 --feast-timeout 1800
             --feast-memory-cap-gb 10 --skip-feast --skip-postgres
             --database-url postgres://postgres@127.0.0.1:5432/postgres

Workload: one view of 10 features (5 Float32, 5 Int64) over 100,000 drivers, with
feature rows spread over 30 days (2% of them repeat a (driver, ts) with a later
`created`), ttl 2 days. Entity frames: driver ids drawn from 110,000 (about 9% unknown),
times from one day before the first feature row to one day after the last (about 3%
before any row), the last 5% of rows duplicates of earlier ones. Files go to
bench/out/historical/ (reused when present).

Every run is a child process, engines interleaved, --repeat times (Feast only once when
slower than --feast-repeat-below seconds), the best time kept; its time covers the retrieval only (entity frame already
in memory, result materialised as Arrow, or pandas for Feast), its CPU is the child's
user + system time for that call, and its peak memory is the child's own high-water
RSS (VmHWM; os.wait4's figure carries the parent's peak). PostgreSQL's own memory is
the server's and is not in that figure; its table is loaded (COPY, then an index on (driver_id,
event_timestamp) and ANALYZE) before timing. Feast runs in .feast-venv
(tests/feast_peer/venv.sh) and is killed at --feast-timeout seconds or when its RSS
passes --feast-memory-cap-gb, reported as such.

DuckDB instances are started before timing (the raw run's connect, Larder's process-wide
instance), as in a running server.

Raw ASOF is `entity ASOF LEFT JOIN source ON driver_id = driver_id AND T >= ts`: no ttl,
no created tie-break, no row order, so it is a floor, not a correct answer.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "historical"
FEAST_PYTHON = ROOT / ".feast-venv" / "bin" / "python"
ENTITIES = 100_000
DAYS = 30
TTL_SECONDS = 2 * 86400
START_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
FEATURES = [f"f{i}" for i in range(10)]
DTYPES = ["Float32"] * 5 + ["Int64"] * 5
CHUNK = 1_000_000
DEFAULT_DSN = "postgres://postgres@127.0.0.1:5432/postgres"


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


# -- workload ------------------------------------------------------------------------


def source_file(rows: int) -> Path:
    """The feature rows, generated once (seeded) in row groups of 1M."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = OUT / f"source_{label(rows)}.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows)
    schema = pa.schema(
        [
            ("driver_id", pa.int64()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("created", pa.timestamp("us", tz="UTC")),
        ]
        + [(f, pa.float32() if d == "Float32" else pa.int64()) for f, d in zip(FEATURES, DTYPES, strict=True)]
    )
    tmp = path.with_suffix(".partial")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            ids = rng.integers(0, ENTITIES, n)
            ts = START_US + rng.integers(0, DAYS * 86400, n) * 1_000_000
            created = ts + rng.integers(0, 3600, n) * 1_000_000
            dup = n // 50  # repeat (driver, ts) with a later created
            ids[-dup:], ts[-dup:] = ids[:dup], ts[:dup]
            created[-dup:] = created[:dup] + 1_000_000
            columns = [pa.array(ids), pa.array(ts, pa.timestamp("us", tz="UTC"))]
            columns.append(pa.array(created, pa.timestamp("us", tz="UTC")))
            columns += [pa.array(rng.random(n, dtype=np.float32)) for _ in range(5)]
            columns += [pa.array(rng.integers(0, 1000, n)) for _ in range(5)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    tmp.rename(path)
    return path


def entity_file(rows: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = OUT / f"entity_{label(rows)}.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows + 1)
    ids = rng.integers(0, ENTITIES * 11 // 10, rows)
    ts = START_US + rng.integers(-86400 * 1_000_000, (DAYS + 1) * 86400 * 1_000_000, rows)
    dup = rows // 20
    pick = rng.integers(0, rows - dup, dup)
    ids[-dup:], ts[-dup:] = ids[pick], ts[pick]
    table = pa.table(
        {
            "driver_id": pa.array(ids),
            "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "label": pa.array(np.arange(rows)),
        }
    )
    pq.write_table(table, path.with_suffix(".partial"))
    path.with_suffix(".partial").rename(path)
    return path


def load_postgres(dsn: str, source: Path, rows: int) -> tuple[str, float]:
    """The source rows in larder_bench.driver_stats_<n> (reused when complete); returns the
    table and the load time (0 when reused)."""
    import psycopg
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = f"larder_bench.driver_stats_{label(rows).lower()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS larder_bench")
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()[0]
        if exists and conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows:
            return table, 0.0
        start = time.perf_counter()
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        columns = ", ".join(
            f"{f} {'real' if d == 'Float32' else 'bigint'}" for f, d in zip(FEATURES, DTYPES, strict=True)
        )
        conn.execute(
            f"CREATE TABLE {table} (driver_id bigint, event_timestamp timestamptz, created timestamptz, {columns})"
        )
        options = pacsv.WriteOptions(include_header=False)
        with conn.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in pq.ParquetFile(source).iter_batches(batch_size=200_000):
                buffer = io.BytesIO()
                pacsv.write_csv(batch, buffer, options)
                copy.write(buffer.getvalue())
        conn.execute(f"CREATE INDEX ON {table} (driver_id, event_timestamp)")
        conn.execute(f"ANALYZE {table}")
        return table, time.perf_counter() - start


# -- children: one run each ------------------------------------------------------------


def view_spec(kind: str, where: str):
    from serving.offline.specs import SourceSpec, ViewSpec

    if kind == "file":
        source = SourceSpec(
            "driver_stats", "file", path=where, timestamp_field="event_timestamp", created_timestamp_column="created"
        )
    else:
        source = SourceSpec(
            "driver_stats", "postgres", table=where, dsn_setting="BENCH_PG_DSN",
            timestamp_field="event_timestamp", created_timestamp_column="created",
        )  # fmt: skip
    return ViewSpec(
        "bench", "driver_stats", "", ("driver_id",), tuple(zip(FEATURES, DTYPES, strict=True)), TTL_SECONDS, source
    )


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def high_water_mb() -> float | None:
    """This process's peak RSS (VmHWM). Not wait4's ru_maxrss: Linux carries the forking
    parent's peak across exec, so every child of a parent that grew (loading PostgreSQL)
    would report at least the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def summary(table, seconds: float, cpu_start: float) -> dict:
    import pyarrow.compute as pc

    return {
        "seconds": seconds,
        "cpu": cpu() - cpu_start,
        "rows": table.num_rows,
        "non_null": table.num_rows - table.column("f0").null_count,
        "checksum": pc.sum(table.column("f5")).as_py(),
        "hwm_mb": high_water_mb(),
    }


def child(engine: str, where: str, entity_path: str) -> dict:
    import pyarrow.parquet as pq

    entity = pq.read_table(entity_path)
    memory = os.environ.get("LARDER_DUCKDB_MEMORY_LIMIT", "2GB")
    threads = int(os.environ.get("LARDER_DUCKDB_THREADS", "2"))
    if engine == "raw-asof":
        import duckdb

        con = duckdb.connect(":memory:", config={"memory_limit": memory, "threads": threads})
        con.register("entity", entity)
        cpu_start, start = cpu(), time.perf_counter()
        table = con.sql(
            f"SELECT e.*, {', '.join('s.' + f for f in FEATURES)} FROM entity e ASOF LEFT JOIN read_parquet($path) s "
            "ON e.driver_id = s.driver_id AND e.event_timestamp >= s.event_timestamp",
            params={"path": where},
        ).to_arrow_table()
        return summary(table, time.perf_counter() - start, cpu_start)
    if engine == "larder-duckdb":
        from serving.offline.duckdb import DuckDBOfflineEngine

        runner = DuckDBOfflineEngine(memory_limit=memory, threads=threads)
        runner._database()  # the process's DuckDB instance, started like the raw run's connect: not timed
        view = view_spec("file", where)
    else:
        from serving.offline.postgres import PostgresOfflineEngine

        runner = PostgresOfflineEngine()
        view = view_spec("postgres", where)
    cpu_start, start = cpu(), time.perf_counter()
    table = runner.get_historical_features(entity, [(view, FEATURES)], False)
    return summary(table, time.perf_counter() - start, cpu_start)


def run_child(argv: list[str], timeout: float, memory_cap: int | None = None) -> dict:
    """Run one case in a child; its result JSON plus peak RSS (MB), or why it stopped."""
    # argv is built by this script: its own children, or .feast-venv's python
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=ROOT)  # noqa: S603
    started = time.monotonic()
    deadline = started + timeout
    peak_seen = 0
    stopped = ""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        rss = _rss(proc.pid)
        peak_seen = max(peak_seen, rss)
        if time.monotonic() > deadline:
            stopped = f"> {timeout:.0f} s (timeout)"
        elif memory_cap and rss > memory_cap:
            stopped = f"killed at {rss / 1e9:.1f} GB RSS after {time.monotonic() - started:.0f} s (memory cap)"
        if stopped:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.2)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    # wait4's ru_maxrss includes the parent's peak (see high_water_mb): only a fallback
    peak_mb = max(usage.ru_maxrss * 1024, peak_seen) / 1e6
    if stopped:
        return {"error": stopped, "peak_mb": peak_seen / 1e6}
    if os.waitstatus_to_exitcode(status) != 0 or not out.strip():
        return {"error": "failed: " + (err.strip().splitlines() or ["?"])[-1][:200], "peak_mb": peak_mb}
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_mb": result.get("hwm_mb") or peak_mb}


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- the run ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M feature rows x 100k entity rows only")
    parser.add_argument("--sources", default="1000000,10000000")
    parser.add_argument("--entities", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and case, interleaved; best kept")
    parser.add_argument("--feast-timeout", type=float, default=1800)
    parser.add_argument("--feast-memory-cap-gb", type=float, default=10)
    parser.add_argument("--feast-repeat-below", type=float, default=120, help="repeat Feast only when faster (s)")
    parser.add_argument("--timeout", type=float, default=3600, help="for Larder's and the raw runs")
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_PG_DSN", DEFAULT_DSN))
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "SOURCE", "ENTITY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    sources = [1_000_000] if args.quick else [int(x) for x in args.sources.split(",")]
    entities = [100_000] if args.quick else [int(x) for x in args.entities.split(",")]
    feast = not args.skip_feast and FEAST_PYTHON.exists()
    if not args.skip_feast and not feast:
        print("Feast skipped: .feast-venv missing (tests/feast_peer/venv.sh creates it)")
    os.environ["BENCH_PG_DSN"] = args.database_url
    memory = os.environ.get("LARDER_DUCKDB_MEMORY_LIMIT", "2GB")
    print(
        f"DuckDB memory limit {memory}, threads {os.environ.get('LARDER_DUCKDB_THREADS', '2')}; {os.cpu_count()} CPUs"
    )
    results = []
    for n_source in sources:
        src = source_file(n_source)
        table = None
        if not args.skip_postgres:
            table, load = load_postgres(args.database_url, src, n_source)
            print(f"postgres: {table} " + (f"loaded in {load:.1f} s" if load else "reused") + " (not timed)")
        for n_entity in entities:
            ent = entity_file(n_entity)
            case = f"{label(n_source)} x {label(n_entity)}"
            me = [sys.executable, str(Path(__file__).resolve()), "--child"]
            runs = [("raw DuckDB ASOF (floor)", [*me, "raw-asof", str(src), str(ent)], args.timeout, None)]
            runs.append(("Larder DuckDB", [*me, "larder-duckdb", str(src), str(ent)], args.timeout, None))
            if table:
                runs.append(("Larder PostgreSQL", [*me, "larder-postgres", table, str(ent)], args.timeout, None))
            if feast:
                argv = [str(FEAST_PYTHON), str(ROOT / "bench" / "historical_feast.py"), str(src), str(ent)]
                runs.append(("Feast 0.67 file", argv, args.feast_timeout, int(args.feast_memory_cap_gb * 1e9)))
            best: dict[str, dict] = {}
            for attempt in range(args.repeat):
                for name, argv, timeout, cap in runs:
                    done = best.get(name)
                    if done and (
                        "error" in done or (name.startswith("Feast") and done["seconds"] > args.feast_repeat_below)
                    ):
                        continue
                    result = {"case": case, "engine": name, "attempt": attempt + 1, **run_child(argv, timeout, cap)}
                    print(json.dumps(result), flush=True)
                    if done is None or "error" in result or result["seconds"] < done["seconds"]:
                        best[name] = {**result, "runs": (done or {}).get("runs", 0) + 1}
                    else:
                        done["runs"] += 1
            results.extend(best[name] for name, *_ in runs)
    print()
    print(table_markdown(results))
    return 0


def table_markdown(results: list[dict]) -> str:
    lines = [
        "| feature rows x entity rows | engine | time (s), best of runs | CPU (s) | peak RSS (MB) "
        "| rows out | rows with features | time / Larder DuckDB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    ours = {r["case"]: r for r in results if r["engine"] == "Larder DuckDB" and "seconds" in r}
    for r in results:
        base = ours.get(r["case"])
        if "seconds" in r:
            ratio = f"{r['seconds'] / base['seconds']:.2f}x" if base else ""
            lines.append(
                f"| {r['case']} | {r['engine']} | {r['seconds']:.2f} ({r['runs']}) | {r['cpu']:.1f} "
                f"| {r['peak_mb']:.0f} | {r['rows']:,} | {r['non_null']:,} | {ratio} |"
            )
        else:
            limit = r["error"].split()[1] if "timeout" in r["error"] else ""
            ratio = f"> {float(limit) / base['seconds']:.0f}x" if base and limit else ""
            lines.append(f"| {r['case']} | {r['engine']} | {r['error']} | | {r['peak_mb']:.0f} | | | {ratio} |")
    checks = []
    for case, base in ours.items():
        pg = next((r for r in results if r["case"] == case and r["engine"] == "Larder PostgreSQL"), None)
        if pg and "seconds" in pg:
            same = all(pg[k] == base[k] for k in ("rows", "non_null", "checksum"))
            verdict = "agree" if same else "DIFFER"
            checks.append(f"{case}: Larder PostgreSQL and DuckDB results {verdict} (rows, non-null rows, checksum)")
    return "\n".join([*lines, "", *checks])


if __name__ == "__main__":
    sys.exit(main())
