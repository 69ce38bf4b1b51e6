"""Bounded HTTP load with wrk (Debian's `wrk`, C, epoll), and CPU accounting per process tree.

wrk keeps `clients` connections open (keep-alive), each sending the next request as soon
as the previous answer arrives (closed loop), for `duration` seconds, and reports the
latency distribution of all requests. A Lua script posts JSON bodies taken in turn from
a pool (each wrk thread starts at a different place in it) and prints one JSON line at
the end. Why wrk and not a Python client: on a 2-core machine the load generator shares
the CPUs with the servers, and a Python client costs as much CPU per request as the
server under test; wrk costs a few percent of a core (the bench prints what it used).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s
local bodies = {
%(bodies)s
}
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  n = (id * 7919) %% #bodies
end

function request()
  n = n %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[n])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "mean_us": %%.1f, ' ..
    '"max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    client_cpu: float  # cores used by wrk, on average
    server_cpu: float  # cores used by the server's process tree
    redis_cpu: float  # cores used by redis-server
    server_cpu_ms: float  # server CPU per request (ms): less sensitive to other load than requests/s

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk_path() -> str:
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("bench/online.py needs wrk: apt-get install wrk")
    return path


def write_script(path: Path, bodies: list[bytes], token: str | None) -> Path:
    """The Lua script posting `bodies` in turn (JSON text never contains `]==]`)."""
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    lines = ",\n".join(f"[==[{body.decode()}]==]" for body in bodies)
    path.write_text(LUA % {"auth": auth, "bodies": lines})
    return path


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a live process and all its live descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICKS
    total = 0.0
    for pid, cpu in times.items():
        p = pid
        while p > 1:
            if p == root_pid:
                total += cpu
                break
            p = parents.get(p, 0)
    return total


def run_wrk(
    url: str, script: Path, *, clients: int, seconds: float, threads: int, server_pid: int, redis_pid: int | None
) -> LoadResult:
    """One closed-loop run; CPU of wrk (RUSAGE_CHILDREN), the server tree and Redis measured around it."""
    command = [
        wrk_path(),
        "-t", str(min(threads, clients)),
        "-c", str(clients),
        "-d", f"{seconds:g}s",
        "--timeout", "10s",
        "-s", str(script),
        url,
    ]  # fmt: skip
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = tree_cpu_seconds(server_pid)
    redis_before = tree_cpu_seconds(redis_pid) if redis_pid else 0.0
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - wrk, our args
    wall = time.monotonic() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = tree_cpu_seconds(server_pid) - server_before
    redis_cpu = (tree_cpu_seconds(redis_pid) - redis_before) if redis_pid else 0.0
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    client_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        mean_ms=data["mean_us"] / 1e3,
        max_ms=data["max_us"] / 1e3,
        errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        non_2xx=data["status"],
        client_cpu=client_cpu / wall,
        server_cpu=server_cpu / wall,
        redis_cpu=redis_cpu / wall,
        server_cpu_ms=server_cpu / max(data["requests"], 1) * 1e3,
    )


def combine(parts: list[LoadResult]) -> LoadResult:
    """Slices of one run as one: counts and CPU added up; with several slices the
    percentiles are the medians of the slices' percentiles (wrk gives no histogram)."""
    if len(parts) == 1:
        return parts[0]
    seconds = sum(p.seconds for p in parts)
    requests = sum(p.requests for p in parts)

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    def weighted(attr: str) -> float:
        return sum(getattr(p, attr) * p.seconds for p in parts) / seconds

    return LoadResult(
        requests=requests,
        seconds=seconds,
        p50_ms=median([p.p50_ms for p in parts]),
        p99_ms=median([p.p99_ms for p in parts]),
        mean_ms=sum(p.mean_ms * p.requests for p in parts) / max(requests, 1),
        max_ms=max(p.max_ms for p in parts),
        errors=sum(p.errors for p in parts),
        non_2xx=sum(p.non_2xx for p in parts),
        client_cpu=weighted("client_cpu"),
        server_cpu=weighted("server_cpu"),
        redis_cpu=weighted("redis_cpu"),
        server_cpu_ms=sum(p.server_cpu_ms * p.requests for p in parts) / max(requests, 1),
    )
