"""Benchmark of feature-repo plan/apply: how long validation, planning and applying take
for a large repo, on SQLite and (when reachable) PostgreSQL.

    .venv/bin/python bench/apply_bench.py [--views 1000] [--database-url postgres://...]

Generates a repo of N feature views (10 features each) over 50 entities and 100
file sources (all pointing at one tiny Parquet file the bench writes), then times:
load + validation, plan against an empty registry, first apply, re-apply (no-op),
and an apply that changes 10% of the views (ttl and one feature's dtype). Each
backend runs in a child process on a fresh database: a temp SQLite file, or a
PostgreSQL database `larder_bench` created and dropped around the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = 50
SOURCES = 100
FEATURES = 10
BENCH_DB = "larder_bench"
PHASES = [
    ("load", "load + validate repo"),
    ("plan", "plan (empty registry)"),
    ("apply", "first apply"),
    ("reapply", "re-apply (no-op)"),
    ("change", "apply, 10% of views changed"),
]


def write_repo(root: Path, views: int, changed: bool = False) -> None:
    """The generated repo; `changed` alters every 10th view."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    (root / "data").mkdir(parents=True, exist_ok=True)
    table = pa.table({"entity_0_id": [1], "event_timestamp": pa.array([0], pa.timestamp("us", tz="UTC"))})
    pq.write_table(table, root / "data" / "tiny.parquet")
    (root / "project.yaml").write_text(yaml.safe_dump({"project": {"name": "bench", "description": "apply bench"}}))
    entities = [
        {"name": f"entity_{i}", "join_keys": [f"entity_{i}_id"], "value_type": "Int64"} for i in range(ENTITIES)
    ]
    sources = [
        {"name": f"source_{i}", "kind": "file", "path": "data/tiny.parquet", "timestamp_field": "event_timestamp"}
        for i in range(SOURCES)
    ]
    (root / "base.yaml").write_text(yaml.safe_dump({"entities": entities, "data_sources": sources}, sort_keys=False))
    for chunk in range(0, views, 100):
        fvs = []
        for i in range(chunk, min(chunk + 100, views)):
            bump = changed and i % 10 == 0
            schema = [
                {"name": f"f{j}", "dtype": "Float64" if bump and j == 0 else "Float32", "description": f"feature {j}"}
                for j in range(FEATURES)
            ]
            fvs.append(
                {
                    "name": f"view_{i}",
                    "entities": [f"entity_{i % ENTITIES}"],
                    "source": f"source_{i % SOURCES}",
                    "ttl": "2d" if bump else "1d",
                    "schema": schema,
                    "tags": {"team": f"team_{i % 7}"},
                }
            )
        (root / f"views_{chunk // 100:03d}.yaml").write_text(yaml.safe_dump({"feature_views": fvs}, sort_keys=False))


def worker(views: int, database_url: str) -> dict:
    """Run every phase against `database_url` (already empty) and return seconds per phase."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("LARDER_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "larder.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from catalog.models import FeatureView, Field
    from catalog.repo import apply, load_repo, plan

    call_command("migrate", verbosity=0)
    out: dict = {"vendor": connection.vendor}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        write_repo(repo, views)
        started = time.perf_counter()
        definition = load_repo(repo)
        out["load"] = time.perf_counter() - started
        assert not definition.errors, definition.errors[:3]
        started = time.perf_counter()
        planned = plan(definition)
        out["plan"] = time.perf_counter() - started
        out["plan_changes"] = len(planned)
        out["apply"] = apply(definition).elapsed
        out["rows"] = {"feature_views": FeatureView.objects.count(), "fields": Field.objects.count()}
        result = apply(definition)
        assert not result.changes, "re-apply changed something"
        out["reapply"] = result.elapsed
        write_repo(repo, views, changed=True)
        result = apply(load_repo(repo))
        out["change"] = result.elapsed
        out["change_count"] = len(result.changes)
    connection.close()
    return out


def run_child(views: int, database_url: str) -> dict:
    cmd = [sys.executable, __file__, "--views", str(views), "--worker", database_url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)  # noqa: S603 - our own script
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def run_postgres(views: int, url: str) -> dict | None:
    """Create `larder_bench` on the server of `url`, run there, drop it; None if unreachable."""
    import psycopg

    try:
        admin = psycopg.connect(_admin_url(url).replace("postgres://", "postgresql://", 1), autocommit=True)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL not reachable at {url}: {exc}".splitlines()[0], file=sys.stderr)
        return None
    bench_url = urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DB}"))
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
        try:
            return run_child(views, bench_url)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def table(results: dict[str, dict]) -> str:
    names = list(results)
    header = "| phase | " + " | ".join(f"{n} (s) | {n} vs first apply" for n in names) + " |"
    lines = [header, "|" + " --- |" * (1 + 2 * len(names))]
    for key, label in PHASES:
        cells = []
        for n in names:
            r = results[n]
            cells += [f"{r[key]:.3f}", f"{r[key] / r['apply']:.2f}x"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=1000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""), help="PostgreSQL server to use")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.views, args.worker)))
        return
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = run_child(args.views, f"sqlite:///{tmp}/bench.sqlite3")
    if args.database_url.startswith(("postgres://", "postgresql://")):
        pg = run_postgres(args.views, args.database_url)
        if pg is not None:
            results["PostgreSQL"] = pg
    first = next(iter(results.values()))
    print(
        f"{args.views} feature views x {FEATURES} features, {ENTITIES} entities, {SOURCES} file sources: "
        f"{first['plan_changes']} objects created, {first['change_count']} updated by the 10% change"
    )
    print(table(results))


if __name__ == "__main__":
    main()
