"""A Larder server in a subprocess, on a free port of 127.0.0.1, with its own scratch database."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def larder_env(workdir: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment of a scratch Larder: SQLite file and var/ files in `workdir`, the
    built-in provider on, public URL on `port`; DATABASE_URL and REDIS_URL not inherited."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'larder.sqlite3'}",
        LARDER_DEBUG="1",
        LARDER_BUILTIN_IDP="1",
        LARDER_PUBLIC_URL=f"http://127.0.0.1:{port}",
        LARDER_OIDC_SIGNING_KEY_FILE=str(workdir / "oidc.pem"),
        LARDER_OIDC_CLIENT_SECRET_FILE=str(workdir / "oidc-client-secret"),
        LARDER_DATA_DIR=str(workdir / "data"),
        LARDER_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def run_setup(spec: Path, env: dict[str, str]) -> str:
    """tests/feast_peer/larder_setup.py in a child process; returns its stdout."""
    done = subprocess.run(  # noqa: S603 - our interpreter and script
        [str(PYTHON), str(Path(__file__).with_name("larder_setup.py")), str(spec)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode:
        raise RuntimeError(f"larder_setup.py failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


class LarderServer:
    """`manage.py runserver` (threaded, no reloader) until stop()."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [str(PYTHON), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log = log

    def wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Larder exited with {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)  # noqa: S310 - our loopback server
                return
            except urllib.error.HTTPError:
                return  # it answers (a 404/503 is an answer)
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"Larder did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
