"""tests/services.py decides whether `make test` runs the integration tier: check its verdicts."""

import socket

import pytest

from tests import services


@pytest.fixture
def listening_port():
    """A port on which something accepts connections (but does not speak Redis)."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def closed_port():
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_reachable_postgres_is_exported(monkeypatch, capsys, listening_port, closed_port):
    monkeypatch.setenv("DATABASE_URL", f"postgres://u@127.0.0.1:{listening_port}/larder")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port}/0")
    monkeypatch.delenv("CI", raising=False)
    assert services.main() == 0
    out = capsys.readouterr()
    assert f"export DATABASE_URL=postgres://u@127.0.0.1:{listening_port}/larder" in out.out
    assert "REDIS_URL" not in out.out, "a server that does not answer PING is not Redis"
    assert "LARDER_SKIP_INTEGRATION" not in out.out


def test_unreachable_postgres_skips_loudly(monkeypatch, capsys, closed_port):
    monkeypatch.setenv("DATABASE_URL", f"postgres://u:secret@127.0.0.1:{closed_port}/larder")
    monkeypatch.delenv("CI", raising=False)
    assert services.main() == 0
    out = capsys.readouterr()
    assert "export LARDER_SKIP_INTEGRATION=1" in out.out
    assert f"!!! SKIPPING INTEGRATION TIER: PostgreSQL not reachable at 127.0.0.1:{closed_port}" in out.err
    assert "secret" not in out.err, "the password stays out of the log"


def test_unreachable_postgres_fails_under_ci(monkeypatch, capsys, closed_port):
    monkeypatch.setenv("DATABASE_URL", f"postgres://u@127.0.0.1:{closed_port}/larder")
    monkeypatch.setenv("CI", "true")
    assert services.main() == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "INTEGRATION TIER REQUIRED" in out.err
