"""Benchmark of catalog search on PostgreSQL at issue 7's scale: 10,000 feature views
and 100,000 features (plus entities and sources), target p95 < 50 ms.

    .venv/bin/python bench/search.py [--views 10000] [--queries 300] [--database-url postgres://...]

Creates the database `larder_search_bench` on the server of --database-url (default
DATABASE_URL), fills it straight through the models (5 projects, 10 features per
view, realistic names, descriptions and tags), builds the search index the way
apply does (catalog.search_index.sync_project), then runs a mix of queries (exact
names, prefixes, typos, description words, tags, and a tag filter) through
catalog.search.search, the code path of the search page and /api/v1/search:

- as a superuser;
- as a scoped user: one role with DESCRIBE on everything in two projects, and on
  feature views named `driver_.*` in a third (a name-pattern permission, which
  `restrict` evaluates per object);
- as the scoped user through the HTTP API (Django's test client: middleware,
  authentication, DRF, JSON), for the whole request path.

The baseline is what a naive search would do: per type, a plain
`name__icontains OR description__icontains` query for the first 20 rows and a
count (no ranking, facets, typos or permissions). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "larder_search_bench"
PROJECTS = 5
FEATURES_PER_VIEW = 10
SEED = 7

DOMAINS = ["driver", "customer", "order", "trip", "payment", "merchant", "rider", "session", "device", "courier"]
SUBJECTS = ["activity", "quality", "spend", "fraud", "engagement", "latency", "rating", "churn", "supply", "demand"]
WINDOWS = ["1h", "24h", "7d", "30d", "90d"]
MEASURES = ["count", "avg", "sum", "max", "min", "ratio", "rate", "stddev", "last", "distinct"]
NOUNS = ["trips", "orders", "payments", "ratings", "sessions", "clicks", "refunds", "cancellations", "minutes", "km"]
TEAMS = ["growth", "risk", "marketplace", "logistics", "pricing", "support", "ml-platform", "fraud", "ads", "search"]
WORDS = [
    "average",
    "number",
    "completed",
    "rolling",
    "window",
    "per",
    "hour",
    "daily",
    "weekly",
    "accepted",
    "declined",
    "conversion",
    "acceptance",
    "distance",
    "duration",
    "revenue",
    "active",
    "cancelled",
    "flagged",
    "verified",
]


def generate(views: int) -> dict:
    """Fill the registry through the models; returns names the query mix draws from."""
    from access.models import Permission
    from catalog.models import DataSource, Entity, FeatureView, Field, Project

    rnd = random.Random(SEED)
    through = FeatureView.entities.through
    view_names: list[str] = []
    feature_names: list[str] = []
    per_project = views // PROJECTS
    for p in range(PROJECTS):
        project = Project.objects.create(
            name=f"project_{p}", description=f"bench project {p}", owner="bench@example.com"
        )
        entities = Entity.objects.bulk_create(
            Entity(project=project, name=f"{d}", join_keys=[f"{d}_id"], value_type="Int64", description=f"a {d}")
            for d in DOMAINS
        )
        sources = DataSource.objects.bulk_create(
            DataSource(
                project=project,
                name=f"{d}_{s}_source",
                kind="file",
                path=f"data/{d}/{s}.parquet",
                timestamp_field="event_timestamp",
                description=f"raw {s} events of each {d}",
                tags={"team": TEAMS[i % len(TEAMS)]},
            )
            for i, (d, s) in enumerate((d, s) for d in DOMAINS for s in SUBJECTS)
        )
        fvs = []
        for i in range(per_project):
            domain, subject = DOMAINS[i % len(DOMAINS)], SUBJECTS[(i // len(DOMAINS)) % len(SUBJECTS)]
            window = WINDOWS[(i // 100) % len(WINDOWS)]
            name = f"{domain}_{subject}_{window}_v{i}"
            fvs.append(
                FeatureView(
                    project=project,
                    name=name,
                    source=sources[(i % len(DOMAINS)) * len(SUBJECTS) + (i // len(DOMAINS)) % len(SUBJECTS)],
                    description=f"{' '.join(rnd.sample(WORDS, 5))} {subject} signals of each {domain} over {window}",
                    owner=f"{TEAMS[i % len(TEAMS)]}@example.com",
                    tags={
                        "team": TEAMS[i % len(TEAMS)],
                        "tier": ["gold", "silver", "bronze"][i % 3],
                        "pii": "true" if i % 11 == 0 else "false",
                    },
                )
            )
        fvs = FeatureView.objects.bulk_create(fvs, batch_size=2000)
        through.objects.bulk_create(
            [through(featureview_id=v.pk, entity_id=entities[i % len(DOMAINS)].pk) for i, v in enumerate(fvs)],
            batch_size=5000,
        )
        fields = []
        for i, view in enumerate(fvs):
            domain = DOMAINS[i % len(DOMAINS)]
            for j in range(FEATURES_PER_VIEW):
                measure, noun = MEASURES[j], NOUNS[(i + j) % len(NOUNS)]
                fields.append(
                    Field(
                        feature_view=view,
                        name=f"{measure}_{noun}_{WINDOWS[(i + j) % len(WINDOWS)]}",
                        dtype="Float32",
                        position=j,
                        description=f"{measure} of {noun} per {domain}, {' '.join(rnd.sample(WORDS, 3))}",
                        tags={"unit": noun} if j % 3 == 0 else {},
                    )
                )
        Field.objects.bulk_create(fields, batch_size=5000)
        view_names += [v.name for v in fvs]
        feature_names += [f.name for f in fields[:: FEATURES_PER_VIEW // 2]]
    scoped = Project.objects.order_by("name")[:3]
    for project in scoped[:2]:
        Permission.objects.create(
            project=project, name="analysts-describe", actions=["DESCRIBE"], roles=["analyst"], types=[]
        )
    Permission.objects.create(
        project=scoped[2],
        name="analysts-driver-views",
        types=["feature_view"],
        name_patterns=["driver_.*"],
        actions=["DESCRIBE"],
        roles=["analyst"],
    )
    return {"views": view_names, "features": sorted(set(feature_names))}


def typo(word: str, rnd: random.Random) -> str:
    """Swap two neighbouring letters of the longest word (a typical typing slip)."""
    parts = word.split("_")
    longest = max(range(len(parts)), key=lambda i: len(parts[i]))
    w = parts[longest]
    if len(w) >= 4:
        i = rnd.randrange(1, len(w) - 2)
        parts[longest] = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    return "_".join(parts)


def query_mix(names: dict, count: int) -> list[tuple[str, dict]]:
    """(kind, search kwargs) pairs in a fixed random order."""
    rnd = random.Random(SEED + 1)
    kinds = []
    for _ in range(count):
        kind = rnd.choice(["exact", "exact", "prefix", "typo", "typo", "description", "tag", "filter"])
        if kind == "exact":
            pool = names["views"] if rnd.random() < 0.5 else names["features"]
            kinds.append((kind, {"query": rnd.choice(pool)}))
        elif kind == "prefix":
            name = rnd.choice(names["views"])
            kinds.append((kind, {"query": name[: rnd.randint(3, 10)].rstrip("_")}))
        elif kind == "typo":
            name = rnd.choice(names["views"] if rnd.random() < 0.5 else names["features"])
            kinds.append((kind, {"query": typo(name.rsplit("_v", 1)[0], rnd)}))
        elif kind == "description":
            kinds.append((kind, {"query": " ".join(rnd.sample(WORDS, rnd.randint(1, 2)))}))
        elif kind == "tag":
            kinds.append((kind, {"query": rnd.choice(TEAMS)}))
        else:
            kinds.append(
                (kind, {"query": rnd.choice(SUBJECTS), "tags": (("tier", "gold"),), "types": ("feature_view",)})
            )
    return kinds


def backend_cpu(pid: int) -> float | None:
    """CPU seconds used so far by a PostgreSQL backend on this host (None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "mean": statistics.fmean(samples), "n": len(samples)}


def existing_names() -> dict:
    """The names `generate` returned, read back from a kept database (--reuse-db):
    views in creation order, and every fifth feature (each project's fields are
    contiguous and a multiple of ten long, so a global stride equals generate's)."""
    from catalog.models import FeatureView, Field

    views = list(FeatureView.objects.order_by("pk").values_list("name", flat=True))
    fields = list(Field.objects.order_by("pk").values_list("name", flat=True))
    return {"views": views, "features": sorted(set(fields[:: FEATURES_PER_VIEW // 2]))}


def worker(views: int, queries: int, database_url: str, reuse: bool = False, only: tuple[str, ...] = ()) -> dict:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("LARDER_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "larder.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Q
    from django.test import Client

    from catalog import search_index
    from catalog.models import Project, SearchDocument
    from catalog.search import SearchParams, search

    call_command("migrate", verbosity=0)
    out: dict = {"generate_s": 0.0, "index_s": 0.0}
    if reuse and Project.objects.exists():
        names = existing_names()
        search_index.ensure_fresh()
    else:
        started = time.perf_counter()
        names = generate(views)
        out["generate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for pk in Project.objects.values_list("pk", flat=True):
            search_index.sync_project(pk)
        out["index_s"] = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    out["documents"] = SearchDocument.objects.count()
    out["rows"] = {
        "feature_views": SearchDocument.objects.filter(object_type="feature_view").count(),
        "features": SearchDocument.objects.filter(object_type="feature").count(),
    }
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", password=None
    )
    analyst = User.objects.filter(username="bench-analyst").first()
    if analyst is None:
        analyst = User.objects.create_user("bench-analyst")
        analyst.groups.add(Group.objects.create(name="analyst"))
    mix = query_mix(names, queries)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def timed(fn) -> dict | None:
        """Wall-clock percentiles per query kind, plus the mean CPU per query of this
        process and of its PostgreSQL backend: on a shared machine wall time measures
        the load as much as the code, CPU time much less so."""
        for _, kwargs in mix[:20]:  # warm-up: plans, caches
            fn(kwargs)
        samples: dict[str, list[float]] = {"all": []}
        cpu, server = time.process_time(), backend_cpu(backend)
        for kind, kwargs in mix:
            t = time.perf_counter()
            fn(kwargs)
            ms = (time.perf_counter() - t) * 1000
            samples["all"].append(ms)
            samples.setdefault(kind, []).append(ms)
        result = {k: percentiles(v) for k, v in samples.items()}
        result["all"]["client_cpu_ms"] = (time.process_time() - cpu) * 1000 / len(mix)
        if server is not None:
            result["all"]["server_cpu_ms"] = (backend_cpu(backend) - server) * 1000 / len(mix)
        return result

    def run_search(user):
        def call(kwargs):
            # A fresh user object per request, as each request loads one (no permission cache carried over).
            fresh = User.objects.get(pk=user.pk)
            return search(fresh, SearchParams(limit=20, **kwargs))

        return call

    def wanted(part: str) -> bool:
        return not only or part in only

    if wanted("superuser"):
        out["superuser"] = timed(run_search(admin))
    if wanted("scoped"):
        out["scoped"] = timed(run_search(analyst))
    client = Client()
    client.force_login(analyst)

    def api(kwargs):
        params = {"query": kwargs["query"], "limit": 20}
        if "tags" in kwargs:
            params["tags"] = [f"{k}:{v}" for k, v in kwargs["tags"]]
            params["type"] = list(kwargs["types"])
        response = client.get("/api/v1/search", params)
        assert response.status_code == 200, response.content[:300]

    if wanted("scoped_api"):
        out["scoped_api"] = timed(api)
    models = [m for m in search_index.OBJECT_MODELS.values()]

    def baseline(kwargs):
        q = kwargs["query"]
        for model in models:
            qs = model.objects.filter(Q(name__icontains=q) | Q(description__icontains=q))
            list(qs[:20].values_list("pk", "name"))
            qs.count()

    if wanted("baseline"):
        out["baseline"] = timed(baseline)
    # Result quality: how often a typo'd name still finds the object it came from, first page.
    rnd = random.Random(SEED + 2)
    found = 0
    trials = 100 if wanted("recall") else 0
    for _ in range(trials):
        name = rnd.choice(names["views"])
        result = search(admin, SearchParams(query=typo(name.rsplit("_v", 1)[0], rnd), limit=20))
        found += any(h.name.startswith(name.rsplit("_v", 1)[0]) for h in result.hits)
    out["typo_recall"] = found / trials if trials else float("nan")
    connection.close()
    return out


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres")).replace("postgres://", "postgresql://", 1)


def run(views: int, queries: int, url: str, keep: bool = False, reuse: bool = False, only: str = "") -> dict:
    """Run the worker against the scratch database; `keep` leaves it behind and
    `reuse` starts from a kept one (for iterating on the search code, not for figures
    of the index build)."""
    import psycopg

    bench_url = urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DB}"))
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if not (reuse and exists):
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {BENCH_DB}")
        try:
            cmd = [sys.executable, __file__, "--views", str(views), "--queries", str(queries), "--worker", bench_url]
            cmd += ["--reuse-db"] if reuse else []
            cmd += ["--only", only] if only else []
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)  # noqa: S603
            if done.returncode != 0:
                raise RuntimeError(f"benchmark worker failed:\n{done.stderr[-5000:]}")
            return json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            if not keep:
                admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def table(out: dict) -> str:
    base = out["baseline"]["all"] if "baseline" in out else None
    lines = [
        "| who / path | queries | p50 (ms) | p95 (ms) | p99 (ms) | p95 vs baseline | CPU/query client, server (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, label in [
        ("baseline", "baseline: icontains per type, no ranking (superuser)"),
        ("superuser", "search(), superuser"),
        ("scoped", "search(), scoped role"),
        ("scoped_api", "GET /api/v1/search, scoped role"),
    ]:
        if key not in out:
            continue
        r = out[key]["all"]
        ratio = f"{r['p95'] / base['p95']:.2f}x" if base else "-"
        cpu = f"{r['client_cpu_ms']:.1f}, " + (f"{r['server_cpu_ms']:.1f}" if "server_cpu_ms" in r else "-")
        lines.append(f"| {label} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {ratio} | {cpu} |")
    lines += [
        "",
        "| query kind (scoped role) | queries | p50 (ms) | p95 (ms) | p99 (ms) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, r in out.get("scoped", {}).items():
        if kind != "all":
            lines.append(f"| {kind} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/larder")
    )
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DB} behind after the run")
    parser.add_argument("--reuse-db", action="store_true", help=f"start from a kept {BENCH_DB} (no generate/index)")
    parser.add_argument("--only", default="", help="comma-separated parts: superuser,scoped,scoped_api,baseline,recall")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = tuple(p for p in args.only.split(",") if p)
    if args.worker:
        print(json.dumps(worker(args.views, args.queries, args.worker, args.reuse_db, only)))
        return
    out = run(args.views, args.queries, args.database_url, args.keep_db, args.reuse_db, args.only)
    print(
        f"{out['rows']['feature_views']} feature views, {out['rows']['features']} features, "
        f"{out['documents']} search documents; generated in {out['generate_s']:.1f} s, "
        f"indexed in {out['index_s']:.1f} s; typo'd view names found on page 1: {out['typo_recall']:.0%}"
    )
    print(table(out))


if __name__ == "__main__":
    main()
