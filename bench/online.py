"""Online serving over HTTP: Larder (gunicorn) vs Feast's Python feature server, same Redis, same data.

    .venv/bin/python bench/online.py [--entities 100000] [--clients 16] [--duration 20]
        [--batches 1,100] [--workers 2] [--threads 8] [--redis-url redis://127.0.0.1:6379/0]
        [--redis-db 13] [--database-url postgres://...] [--only larder|feast] [--profile]

Issue 4's benchmark. Steps, all on 127.0.0.1:
1. Workload: N entities (Int64 `driver_id`), one view `driver_stats` of 10 features
   (3 Float32, 3 Int64, 2 Float64, 2 String), one Parquet file both loaders read.
2. Larder: a scratch registry (SQLite file, or PostgreSQL database `larder_online_http_bench`
   with --database-url), the repo applied, the rows written through Larder's write
   path (`serving.online` redis store, 10,000 per batch) into Redis db --redis-db,
   a user with READ_ONLINE and a personal token; then gunicorn (`larder.wsgi`, gthread
   workers, DEBUG off, LARDER_ONLINE_STORE=redis).
3. Feast 0.67 (.feast-venv, made by tests/feast_peer/venv.sh): a Feast repo with the same
   view on the same Redis db (Feast's own keys), `feast apply`, the same rows through
   `FeatureStore.write_to_online_store` (bench/feast_load.py); then `feast serve` with
   the same number of workers (uvicorn workers under gunicorn; no auth).
4. Both answer a sample of the request bodies; their values are compared.
5. wrk (bench/http_load.py) drives each server in turn: --clients connections for
   --duration seconds, after a 3 s warm-up, per batch size (1 and 100 entities per
   request, all 10 features; bodies drawn at random, the same for both servers).
6. Raw ceiling: redis-py on one connection, HMGET of the same hashes and fields Larder
   reads (a direct command for 1 key, a pipeline for 100), no HTTP, no decoding.
Redis db --redis-db is FLUSHED before and after. Results also go to bench/out/.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_load import LoadResult, combine, run_wrk, write_script  # noqa: E402

VENV_PY = ROOT / ".venv" / "bin" / "python"
FEAST_VENV = ROOT / ".feast-venv"
PROJECT = "bench_online"
FEAST_PROJECT = "bench_feast"
VIEW = "driver_stats"
ROLE = "bench-reader"
FEATURES = [f"f32_{i}" for i in range(3)] + [f"i64_{i}" for i in range(3)]
FEATURES += [f"f64_{i}" for i in range(2)] + [f"str_{i}" for i in range(2)]
DTYPES = {"f32": "Float32", "i64": "Int64", "f64": "Float64", "str": "String"}
BODIES = {1: 2000, 100: 300}  # request bodies per batch size (drawn once, used in turn)
WARMUP_SECONDS = 3
BENCH_DB = "larder_online_http_bench"
FIRST_ID = 1_000_000


# --- workload -------------------------------------------------------------------


def make_workload(n: int, path: Path) -> None:
    """N rows of the view, written once: both loaders read this file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(42)

    def f32(x: float) -> float:
        return struct.unpack("<f", struct.pack("<f", x))[0]

    columns: dict[str, pa.Array] = {"driver_id": pa.array(range(FIRST_ID, FIRST_ID + n), pa.int64())}
    for name in FEATURES:
        kind = name.split("_")[0]
        if kind == "f32":
            columns[name] = pa.array([f32(rng.random() * 100) for _ in range(n)], pa.float32())
        elif kind == "i64":
            columns[name] = pa.array([rng.randrange(-(2**62), 2**62) for _ in range(n)], pa.int64())
        elif kind == "f64":
            columns[name] = pa.array([rng.random() * 1e6 for _ in range(n)], pa.float64())
        else:
            columns[name] = pa.array([f"value-{rng.randrange(10**9)}" for _ in range(n)], pa.string())
    now = datetime.now(UTC).replace(microsecond=0)
    columns["event_timestamp"] = pa.array(
        [now - timedelta(seconds=rng.randrange(86_400)) for _ in range(n)], pa.timestamp("us", tz="UTC")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def larder_repo(directory: Path, parquet: Path) -> Path:
    schema = "\n".join(f"      - {{name: {name}, dtype: {DTYPES[name.split('_')[0]]}}}" for name in FEATURES)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "repo.yaml").write_text(
        f"""project: {{name: {PROJECT}}}
entities:
  - {{name: driver, join_keys: [driver_id], value_type: Int64}}
data_sources:
  - {{name: driver_source, kind: file, path: {parquet}, timestamp_field: event_timestamp}}
feature_views:
  - name: {VIEW}
    entities: [driver]
    source: driver_source
    ttl: 0
    schema:
{schema}
permissions:
  - {{name: bench-read, types: [feature_view], actions: [DESCRIBE, READ_ONLINE], roles: [{ROLE}]}}
"""
    )
    return directory


def feast_repo(directory: Path, parquet: Path, redis_host: str, redis_port: int, db: int) -> Path:
    fields = "\n".join(f"        Field(name={name!r}, dtype={DTYPES[name.split('_')[0]]})," for name in FEATURES)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "definitions.py").write_text(
        f"""from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
source = FileSource(name="driver_source", path={str(parquet)!r}, timestamp_field="event_timestamp")
{VIEW} = FeatureView(
    name={VIEW!r},
    entities=[driver],
    ttl=timedelta(0),
    schema=[
        Field(name="driver_id", dtype=Int64),
{fields}
    ],
    source=source,
)
"""
    )
    (directory / "feature_store.yaml").write_text(
        f"""project: {FEAST_PROJECT}
provider: local
registry: registry.db
online_store:
  type: redis
  connection_string: "{redis_host}:{redis_port},db={db}"
entity_key_serialization_version: 3
"""
    )
    return directory


# --- loading (the Larder part runs in a child process: its own Django settings) ---


def load_larder_child(workdir: str) -> int:
    """`bench/online.py --load-larder WORKDIR`: migrate, apply, write every row, issue a token."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "larder.settings")
    django.setup()
    import pyarrow.parquet as pq
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from access.identity.personal_tokens import issue_token
    from catalog.models import FeatureView
    from serving.online import OnlineRows, ViewKey, get_online_store

    work = Path(workdir)
    call_command("migrate", verbosity=0, interactive=False)
    call_command("apply", str(work / "larder_repo"), stdout=io.StringIO())
    view = ViewKey.for_feature_view(FeatureView.objects.get(name=VIEW, project__name=PROJECT))
    table = pq.read_table(work / "data" / "workload.parquet")
    store = get_online_store()
    started = time.perf_counter()
    written = 0
    for batch in table.to_batches(max_chunksize=10_000):
        data = batch.to_pydict()
        written += store.write_batch(
            view, OnlineRows({"driver_id": data["driver_id"]}, {f: data[f] for f in FEATURES}, data["event_timestamp"])
        ).written
    seconds = time.perf_counter() - started
    assert written == table.num_rows, (written, table.num_rows)
    user = User.objects.create_user("bench")
    user.groups.add(Group.objects.get_or_create(name=ROLE)[0])
    _, token = issue_token(user, "bench", days=1)
    print(json.dumps({"token": token, "rows": written, "seconds": seconds}))
    return 0


def run_json(command: list[str], **kwargs) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603
    if done.returncode:
        raise RuntimeError(f"{command[:3]} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- servers --------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: bytes, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Server:
    def __init__(self, name: str, command: list[str], env: dict, cwd: Path, log: Path, url: str) -> None:
        self.name, self.url, self.log = name, url, log
        self._log = log.open("wb")
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)  # noqa: S603

    def wait(self, body: bytes, token: str | None, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                status, answer = post(self.url, body, token)
                if status == 200:
                    return
                raise RuntimeError(f"{self.name} answered {status}: {answer[:2000]!r}")
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def larder_env(work: Path, database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LARDER_", "DJANGO_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LARDER_ONLINE_STORE="redis",
        LARDER_SECRET_KEY="bench-" + os.urandom(16).hex(),
        LARDER_LOG_LEVEL="WARNING",
        LARDER_DATA_DIR=str(work / "data"),
        LARDER_OIDC_SIGNING_KEY_FILE=str(work / "oidc.pem"),
    )
    return env


# --- checks and the raw ceiling -------------------------------------------------


def same_values(larder: dict, feast: dict) -> None:
    """Both servers' answers to one body agree (Float32 compared at float32 precision)."""
    by_name = [dict(zip(a["metadata"]["feature_names"], a["results"], strict=True)) for a in (larder, feast)]
    assert set(by_name[0]) == set(by_name[1]), (list(by_name[0]), list(by_name[1]))
    for name, ours in by_name[0].items():
        theirs = by_name[1][name]
        assert ours["statuses"] == theirs["statuses"], (name, ours["statuses"], theirs["statuses"])
        for a, b in zip(ours["values"], theirs["values"], strict=True):
            same = math.isclose(a, b, rel_tol=1e-6) if isinstance(a, float) else a == b
            assert same, (name, a, b)


def raw_ceiling(redis_url: str, batches: list[list[int]], seconds: float) -> dict:
    """redis-py on one connection: HMGET of Larder's hashes and fields, as fast as it goes."""
    import redis

    from serving.online.keys import encode_entity_key
    from serving.online.redis import hash_key

    client = redis.Redis.from_url(redis_url)
    fields = [f"_ts:{VIEW}", *(f"{VIEW}:{name}" for name in FEATURES)]
    keyed = [[hash_key(PROJECT, encode_entity_key(("driver_id",), {"driver_id": i})) for i in b] for b in batches]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    turn = 0
    while time.perf_counter() < deadline:
        keys = keyed[turn % len(keyed)]
        turn += 1
        started = time.perf_counter()
        if len(keys) == 1:
            replies = [client.execute_command("HMGET", keys[0], *fields)]
        else:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command("HMGET", key, *fields)
            replies = pipe.execute()
        latencies.append(time.perf_counter() - started)
        assert replies[0][0] is not None
    latencies.sort()
    return {
        "reads_per_s": len(latencies) / sum(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def py_spy(server: Server, label: str, seconds: float) -> subprocess.Popen:
    """py-spy sampling the server and its workers for one run: collapsed stacks in
    bench/out/ (for flamegraph.pl or speedscope; `--nonblocking`: no pauses)."""
    exe = shutil.which("py-spy")
    if not exe:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    out = ROOT / "bench" / "out" / f"online-{label}-{datetime.now(UTC):%H%M%S}.folded"
    out.parent.mkdir(exist_ok=True)
    command = [exe, "record", "--subprocesses", "--nonblocking", "--rate", "250", "--duration", str(int(seconds)),
               "--format", "raw", "--output", str(out), "--pid", str(server.process.pid)]  # fmt: skip
    print(f"  profiling {label} -> {out.relative_to(ROOT)}", flush=True)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


# --- the run --------------------------------------------------------------------


def larder_command(kind: str, port: int, args: argparse.Namespace) -> list[str]:
    """Larder's WSGI app under gunicorn (gthread) or granian, the same worker processes
    and threads; the keep-alive the load generator relies on in both."""
    bin_dir = ROOT / ".venv" / "bin"
    if kind == "gunicorn":
        return [
            str(bin_dir / "gunicorn"), "larder.wsgi",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(args.larder_workers or args.workers),
            "--worker-class", "gthread",
            "--threads", str(args.threads),
            "--keep-alive", "30",
            "--log-level", "warning",
        ]  # fmt: skip
    if kind == "granian":
        return [
            str(bin_dir / "granian"), "--interface", "wsgi",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.larder_workers or args.workers),
            "--blocking-threads", str(args.threads),
            "--log-level", "warning",
            "larder.wsgi:application",
        ]  # fmt: skip
    raise SystemExit(f"--larder-servers: unknown server {kind!r} (gunicorn, granian)")


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def request_bodies(n: int, size: int, count: int) -> list[bytes]:
    rng = random.Random(size)
    refs = [f"{VIEW}:{name}" for name in FEATURES]
    return [
        json.dumps(
            {"features": refs, "entities": {"driver_id": rng.sample(range(FIRST_ID, FIRST_ID + n), size)}}
        ).encode()
        for _ in range(count)
    ]


def prepare_database(database_url: str | None, work: Path, stack: ExitStack) -> str:
    if not database_url:
        return f"sqlite:///{work / 'larder.sqlite3'}"
    import psycopg

    admin = psycopg.connect(database_url, autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    admin.execute(f'CREATE DATABASE "{BENCH_DB}"')

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        admin.close()

    stack.callback(drop)
    parts = urlsplit(database_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{BENCH_DB}", parts.query, ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measured run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="split each run into this many slices, the servers alternating"
    )
    parser.add_argument("--batches", default="1,100", help="entities per request, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="server processes (both servers)")
    parser.add_argument("--larder-workers", type=int, default=0, help="Larder's processes (default: --workers)")
    parser.add_argument("--feast-workers", type=int, default=0, help="Feast's processes (default: --workers)")
    parser.add_argument("--threads", type=int, default=2, help="threads per Larder worker process")
    parser.add_argument(
        "--larder-servers", default="gunicorn,granian", help="WSGI servers to run Larder under (gunicorn, granian)"
    )
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-db", type=int, default=13, help="FLUSHED before and after")
    parser.add_argument("--database-url", default="", help="PostgreSQL server for Larder's registry (default SQLite)")
    parser.add_argument("--only", choices=["larder", "feast"], default=None)
    parser.add_argument("--raw-seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profile of each run in bench/out/ (needs py-spy)"
    )
    parser.add_argument("--load-larder", metavar="WORKDIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_larder:
        return load_larder_child(args.load_larder)
    sizes = [int(x) for x in args.batches.split(",")]
    run_larder, run_feast = args.only in (None, "larder"), args.only in (None, "feast")

    import redis

    redis_url = with_db(args.redis_url, args.redis_db)
    client = redis.Redis.from_url(redis_url)
    redis_pid = int(client.info("server")["process_id"])
    redis_parts = urlsplit(redis_url)
    venv_sh = str(ROOT / "tests" / "feast_peer" / "venv.sh")
    if run_feast and subprocess.run([venv_sh], check=False).returncode:  # noqa: S603 - our script
        raise SystemExit("could not create .feast-venv (tests/feast_peer/venv.sh)")

    results: dict = {"args": vars(args), "load": {}, "http": {}, "raw": {}}
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="larder-online-bench-"))
        if not args.keep:
            stack.callback(shutil.rmtree, work, True)
        client.flushdb()
        stack.callback(client.flushdb)
        parquet = work / "data" / "workload.parquet"
        make_workload(args.entities, parquet)
        print(f"workload: {args.entities} entities x {len(FEATURES)} features -> {parquet}", flush=True)
        servers: dict[str, tuple[Server, str | None]] = {}

        if run_larder:
            larder_repo(work / "larder_repo", parquet)
            env = larder_env(work, prepare_database(args.database_url, work, stack), redis_url)
            loaded = run_json([str(VENV_PY), __file__, "--load-larder", str(work)], env=env, cwd=ROOT)
            results["load"]["larder"] = loaded["seconds"]
            print(f"larder: wrote {loaded['rows']} rows in {loaded['seconds']:.1f} s", flush=True)
            for kind in args.larder_servers.split(","):
                port = free_port()
                name = "larder" if kind == "gunicorn" else f"larder-{kind}"
                server = Server(
                    name,
                    larder_command(kind, port, args),
                    env,
                    ROOT,
                    work / f"{name}.log",
                    f"http://127.0.0.1:{port}/get-online-features",
                )
                stack.callback(server.stop)
                servers[name] = (server, loaded["token"])

        if run_feast:
            repo = feast_repo(
                work / "feast_repo",
                parquet,
                redis_parts.hostname or "127.0.0.1",
                redis_parts.port or 6379,
                args.redis_db,
            )
            feast_env = {k: v for k, v in os.environ.items() if not k.startswith(("LARDER_", "DJANGO_", "FEAST_"))}
            feast_env["FEAST_USAGE"] = "False"
            done = subprocess.run(  # noqa: S603
                [str(FEAST_VENV / "bin" / "feast"), "apply"], cwd=repo, env=feast_env, capture_output=True, text=True
            )
            if done.returncode:
                raise RuntimeError(f"feast apply failed:\n{done.stderr[-3000:]}")
            loaded = run_json(
                [
                    str(FEAST_VENV / "bin" / "python"),
                    str(ROOT / "bench" / "feast_load.py"),
                    str(repo),
                    str(parquet),
                    VIEW,
                ],
                env=feast_env,
            )
            results["load"]["feast"] = loaded["seconds"]
            print(f"feast: wrote {loaded['rows']} rows in {loaded['seconds']:.1f} s", flush=True)
            port = free_port()
            command = [
                str(FEAST_VENV / "bin" / "feast"), "serve",
                "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(args.feast_workers or args.workers),
                "--no-access-log",
                "--max-requests", "0",
                "--registry_ttl_sec", "3600",
            ]  # fmt: skip
            server = Server(
                "feast", command, feast_env, repo, work / "feast.log", f"http://127.0.0.1:{port}/get-online-features"
            )
            stack.callback(server.stop)
            servers["feast"] = (server, None)

        bodies = {size: request_bodies(args.entities, size, BODIES.get(size, 300)) for size in sizes}
        for server, token in servers.values():
            server.wait(bodies[sizes[0]][0], token)
        if "feast" in servers and len(servers) >= 2:
            for size in sizes:
                answers = {name: json.loads(post(s.url, bodies[size][0], t)[1]) for name, (s, t) in servers.items()}
                for name in servers:
                    if name != "feast":
                        same_values(answers[name], answers["feast"])
            print(f"{', '.join(n for n in servers if n != 'feast')} and feast return the same values", flush=True)

        slice_seconds = args.duration / args.rounds
        for size in sizes:
            runs: dict[str, list[LoadResult]] = {name: [] for name in servers}
            scripts = {
                name: write_script(work / f"{name}-{size}.lua", bodies[size], token)
                for name, (_, token) in servers.items()
            }
            for turn in range(args.rounds):
                # Servers alternate slice by slice (the order flips each round): load from
                # other work on the machine falls on both alike.
                order = list(servers) if turn % 2 == 0 else list(servers)[::-1]
                for name in order:
                    server = servers[name][0]
                    run = {"clients": args.clients, "threads": args.wrk_threads, "server_pid": server.process.pid}
                    if turn == 0:
                        run_wrk(server.url, scripts[name], seconds=WARMUP_SECONDS, redis_pid=redis_pid, **run)
                    spy = py_spy(server, f"{name}-{size}", slice_seconds) if args.profile else None
                    runs[name].append(
                        run_wrk(server.url, scripts[name], seconds=slice_seconds, redis_pid=redis_pid, **run)
                    )
                    if spy is not None:
                        spy.wait()
            for name, parts in runs.items():
                result = combine(parts)
                results["http"].setdefault(str(size), {})[name] = result
                print(f"  {name:6} batch {size:3}: {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                      f"p99 {result.p99_ms:6.2f} ms  errors {result.non_2xx + result.errors}", flush=True)  # fmt: skip
        if run_larder:
            for size in sizes:
                batches = [json.loads(b)["entities"]["driver_id"] for b in bodies[size]]
                results["raw"][str(size)] = raw_ceiling(redis_url, batches, args.raw_seconds)

    print_table(results, sizes, args)
    save(results)
    return 0


LABELS = {
    "larder": "Larder, gunicorn gthread (bearer token)",
    "larder-granian": "Larder, granian (bearer token)",
    "feast": "Feast 0.67 (no auth)",
}


def print_table(results: dict, sizes: list[int], args: argparse.Namespace) -> None:
    http = results["http"]
    print(
        f"\n{args.entities} entities x 10 features, Redis; {args.clients} clients x {args.duration:g} s per row "
        f"({args.rounds} alternating slices); "
        f"worker processes: Larder {args.larder_workers or args.workers} x {args.threads} threads, "
        f"Feast {args.feast_workers or args.workers}; "
        "Larder with a bearer token, Feast without auth\n"
    )
    print(
        "| entities/request | server | requests/s | p50 (ms) | p99 (ms) | errors "
        "| server CPU per request (ms) | CPU cores: server / redis / wrk |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in sizes:
        for name, r in http.get(str(size), {}).items():
            label = LABELS.get(name, name)
            print(
                f"| {size} | {label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.non_2xx + r.errors} | "
                f"{r.server_cpu_ms:.2f} | {r.server_cpu:.2f} / {r.redis_cpu:.2f} / {r.client_cpu:.2f} |"
            )
    pairs = [(size, name) for size in sizes for name in http.get(str(size), {}) if name.startswith("larder")]
    pairs = [(size, name) for size, name in pairs if "feast" in http[str(size)]]
    if pairs:
        print("\n| entities/request | Larder server | Larder / Feast requests/s | Feast p99 / Larder p99 | target |")
        print("| --- | --- | --- | --- | --- |")
        for size, name in pairs:
            larder, feast = http[str(size)][name], http[str(size)]["feast"]
            rps, p99 = larder.rps / feast.rps, feast.p99_ms / larder.p99_ms
            met = "met" if rps >= 3 and p99 >= 3 else "MISSED"
            print(f"| {size} | {LABELS[name]} | {rps:.1f}x | {p99:.1f}x | >= 3x, >= 3x: {met} |")
    if results["raw"]:
        print("\n| entities/read | raw redis-py reads/s (1 connection) | p50 (ms) | p99 (ms) |")
        print("| --- | --- | --- | --- |")
        for size in sizes:
            r = results["raw"][str(size)]
            print(f"| {size} | {r['reads_per_s']:,.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    loads = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results["load"].items())
    print(f"\nloading {args.entities} rows: {loads}")


def save(results: dict) -> None:
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    path = out / f"online-http-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"

    def plain(obj):
        if isinstance(obj, LoadResult):
            return {**obj.__dict__, "rps": obj.rps}
        return str(obj)

    path.write_text(json.dumps(results, indent=2, default=plain))
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
