"""Real Celery processes for the materialization integration tests: `celery -A larder worker`
and `celery -A larder beat`, started against the test database (pytest-django's
`test_<name>`) with a Redis broker and a Redis online store on dedicated database numbers.

Workers use the solo pool, so `kill -9` of a worker's process group is the crash of a
whole machine (no parent left to requeue the task): only the broker's visibility
timeout brings the message back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BROKER_DB = 11  # (13 is the historical tests' broker; 14, 15 the online-store tests')
ONLINE_DB = 12
ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))


def redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the test database this process uses (test_<name>)."""
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


# Settings of the test processes: slow partitions (so a worker can be killed mid-job), short
# leases, a short visibility timeout with a sweep every second (redelivery within seconds).
TEST_ENV = {
    "LARDER_TESTING": "1",
    "LARDER_ONLINE_STORE": "redis",
    "LARDER_MATERIALIZE_TEST_DELAY_SECONDS": "1.0",
    "LARDER_MATERIALIZE_PROGRESS_SECONDS": "0.25",
    "LARDER_MATERIALIZE_STALE_SECONDS": "3",
    "LARDER_CELERY_VISIBILITY_TIMEOUT": "6",
    "LARDER_CELERY_RESTORE_SECONDS": "1",
    "LARDER_DB_CONN_MAX_AGE": "0",
    "LARDER_LOG_LEVEL": "INFO",
}


@dataclass
class CeleryProcess:
    name: str
    process: subprocess.Popen
    log: Path
    killed: bool = field(default=False)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""

    def kill_hard(self) -> None:
        """kill -9 of the whole process group: nothing gets to clean up or requeue."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.killed = True

    def stop(self) -> None:
        if not self.alive:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def environment(db_url: str, redis_url: str) -> dict[str, str]:
    broker = redis_db(redis_url, BROKER_DB)
    return {
        **os.environ,
        **TEST_ENV,
        "DJANGO_SETTINGS_MODULE": "larder.test_settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_db(redis_url, ONLINE_DB),
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
    }


def start(kind: str, name: str, env: dict[str, str], logs: Path) -> CeleryProcess:
    log = logs / f"{name}.log"
    if kind == "worker":
        args = [CELERY, "-A", "larder", "worker", "-n", f"{name}@%h", "--pool=solo", "--loglevel=INFO"]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    else:
        args = [CELERY, "-A", "larder", "beat", "--loglevel=INFO", "--max-interval=1"]
    with open(log, "wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own celery, our own arguments
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return CeleryProcess(name, process, log)


def wait_ready(proc: CeleryProcess, marker: str, timeout: float = 120.0) -> None:
    """Until the process logs `marker` (a worker: "ready."; beat: "beat: Starting")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise RuntimeError(f"{proc.name} exited:\n{proc.output()}")
        if marker in proc.output(200_000):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{proc.name} not ready after {timeout}s:\n{proc.output()}")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
