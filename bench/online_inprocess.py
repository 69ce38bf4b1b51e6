"""CPU per /get-online-features call inside one process, without HTTP: the fast path
(serving/fast_path.py) against the full Django + DRF stack, same token, same Redis.

    .venv/bin/python bench/online_inprocess.py [--entities 20000] [--calls 3000] [--redis-url redis://127.0.0.1:6379/12]

Builds bench/online.py's workload and registry (SQLite file, redis store; Redis db
FLUSHED), then in this process calls the WSGI application (`larder.wsgi.application`)
with prepared environ dicts and measures process CPU time per call: the fast path, the
same application with LARDER_SERVING_FAST_PATH off (a child process), and the pieces of
a call (the registry/epoch query, the store's read, raw redis-py HMGET). The server
(granian or gunicorn) adds its own per-request cost on top (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.online import PROJECT, VENV_PY, VIEW, larder_env, larder_repo, make_workload, request_bodies, run_json  # noqa: E402


def cpu_per_call(fn, calls: int) -> float:
    """Microseconds of process CPU per call."""
    for i in range(min(200, calls)):  # warm caches and connections
        fn(i)
    start = time.process_time()
    for i in range(calls):
        fn(i)
    return (time.process_time() - start) / calls * 1e6


def measure(token: str, entities: int, calls: int) -> dict[str, float]:
    """In a process whose environment is already Larder's: µs of CPU per call."""
    from larder.wsgi import application

    bodies = request_bodies(entities, 1, 200)

    def call(i: int) -> None:
        body = bodies[i % len(bodies)]
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/get-online-features",
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json",
            "HTTP_HOST": "127.0.0.1",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "QUERY_STRING": "",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
        }
        status = []
        chunks = application(environ, lambda s, h, e=None: status.append(s))
        b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        assert status[0].startswith("200"), status

    results = {"call": cpu_per_call(call, calls)}
    if os.environ.get("LARDER_SERVING_FAST_PATH") == "false":
        return results
    import redis

    from serving import registry_cache
    from serving.online import get_online_store

    project, _ = registry_cache.locate(PROJECT)
    view = registry_cache.snapshot(project).feature_views[VIEW]
    features = list(view.features)
    keys = [{"driver_id": json.loads(b)["entities"]["driver_id"][0]} for b in bodies]
    store = get_online_store()
    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    results["registry version + access epoch query"] = cpu_per_call(lambda i: registry_cache.locate(PROJECT), calls)
    results["online store read (redis store)"] = cpu_per_call(
        lambda i: store.read(view.key, [keys[i % len(keys)]], features), calls
    )
    results["raw redis-py HMGET (baseline)"] = cpu_per_call(lambda i: raw.hmget("absent", "a", "b"), calls)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--child", nargs=2, metavar=("TOKEN", "FAST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ["LARDER_SERVING_FAST_PATH"] = args.child[1]
        print("BENCH_JSON " + json.dumps(measure(args.child[0], args.entities, args.calls)))
        return 0

    import redis

    work = Path(tempfile.mkdtemp(prefix="larder-online-inprocess-"))
    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    try:
        parquet = work / "data" / "workload.parquet"
        make_workload(args.entities, parquet)
        larder_repo(work / "larder_repo", parquet)
        env = larder_env(work, f"sqlite:///{work}/registry.sqlite3", args.redis_url)
        loader = [str(VENV_PY), str(ROOT / "bench" / "online.py"), "--load-larder", str(work)]
        loaded = run_json(loader, env=env, cwd=ROOT)
        runs = {}
        for fast in ("true", "false"):
            command = [str(VENV_PY), __file__, "--entities", str(args.entities), "--calls", str(args.calls)]
            command += ["--child", loaded["token"], fast]
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
            line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
            runs[fast] = json.loads(line.removeprefix("BENCH_JSON "))
    finally:
        client.flushdb()
        shutil.rmtree(work, ignore_errors=True)

    full, fast = runs["false"]["call"], runs["true"]["call"]
    load = os.getloadavg()[0]
    print(f"\n1 entity x 10 features per call, {args.calls} calls, Redis, registry on SQLite; load {load:.1f}\n")
    print("| what | CPU per call (µs) | vs full stack |")
    print("| --- | ---: | ---: |")
    print(f"| full stack: Django middleware + DRF view (fast path off) | {full:.0f} | 1.00x |")
    print(f"| fast path | {fast:.0f} | {fast / full:.2f}x |")
    for name, value in runs["true"].items():
        if name != "call":
            print(f"| - of which: {name} | {value:.0f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
