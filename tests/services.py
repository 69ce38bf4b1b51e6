"""Which real services the integration tier can use: `make test` evals what this prints.

    eval "$(python tests/services.py)"

Prints `export DATABASE_URL=...` / `export REDIS_URL=...` for services that answer
(the environment's values win over the local defaults), or
`export LARDER_SKIP_INTEGRATION=1` with a loud line on stderr when PostgreSQL is not
reachable. Under CI=true an unreachable PostgreSQL is an error (exit 1): CI must
never pass by skipping the tier that talks to real servers.
"""

import os
import shlex
import socket
import sys
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/larder"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TIMEOUT = 1.0


def reachable(url: str, default_port: int) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    try:
        with socket.create_connection((host, parts.port or default_port), timeout=TIMEOUT):
            return True
    except OSError:
        return False


def redis_answers(url: str) -> bool:
    """A Redis PING, so that another server on 6379 does not count."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=TIMEOUT) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    # "-NOAUTH" also means a Redis is there; the tests will say why they cannot use it.
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def main() -> int:
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    exports: dict[str, str] = {}

    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if reachable(database_url, 5432):
        exports["DATABASE_URL"] = database_url
    else:
        where = urlsplit(database_url).netloc.rsplit("@", 1)[-1]
        if ci:
            loud = f"!!! CI=true: INTEGRATION TIER REQUIRED, but PostgreSQL is not reachable at {where} !!!"
            print(f"\n{loud}\n", file=sys.stderr)
            return 1
        loud = f"!!! SKIPPING INTEGRATION TIER: PostgreSQL not reachable at {where} (set DATABASE_URL) !!!"
        print(f"\n{loud}\n", file=sys.stderr)
        exports["LARDER_SKIP_INTEGRATION"] = "1"

    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if redis_answers(redis_url):
        exports["REDIS_URL"] = redis_url
    else:
        loud = f"!!! Redis not answering at {redis_url}: tests that need Redis will fail (set REDIS_URL) !!!"
        print(loud, file=sys.stderr)
        if ci:
            print("!!! CI=true: Redis is required !!!", file=sys.stderr)
            return 1

    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
