"""A real Feast SDK (0.67, `online_store: {type: remote}`) reading from and writing to a
real Larder server, against Larder's own /get-online-features answers and the values the
test wrote (issue 4, item 6).

One Larder (`runserver`, scratch SQLite, `sql` online store) serves the module. The
Feast side is the user's: feast_repo/definitions.py applied with `feast apply` into a
local file registry (names and types only), then tests/feast_peer/feast_client.py run
by .feast-venv's Python. Feast sends `Authorization: Bearer <token>` from
`auth: {type: oidc, token_env_var: ...}`; one test lets Feast fetch a service
account's client-credentials token from Larder's built-in provider by itself.

Covered: one view, two views, a feature service, full_feature_names both ways, a
missing entity (NOT_FOUND), a stored null (NULL_VALUE), a row older than its view's
ttl (OUTSIDE_MAX_AGE, value kept), errors raised as Feast's own exception classes
(unknown view, unknown feature, denied, bad token), and Feast's write path
(`write_to_online_store` -> POST /write-to-online-store).
"""

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .server import LarderServer, free_port, larder_env, run_setup

pytestmark = pytest.mark.feast

HERE = Path(__file__).parent
PROJECT = "feast_peer"
SA_CLIENT, SA_SECRET = "feast-model-server", "feast-peer-secret-0123456789"
T1 = "2025-03-01T10:00:00+00:00"
T2 = "2025-03-02T08:30:00+00:00"

DRIVER_FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips", "rating_label", "active", "recent_trip_ids"]
# Float32 values are exact binary fractions: the test checks value transport, not rounding.
DRIVERS = {
    1001: {
        "conv_rate": 0.5,
        "acc_rate": 0.91,
        "avg_daily_trips": 12,
        "rating_label": "gold",
        "active": True,
        "recent_trip_ids": [7, 8, 9],
    },
    1002: {
        "conv_rate": 0.25,
        "acc_rate": 1 / 3,
        "avg_daily_trips": 2**40 + 1,
        "rating_label": 'sîlver "quoted" ✓',
        "active": False,
        "recent_trip_ids": [-1],
    },
    1003: {  # a stored null: NULL_VALUE
        "conv_rate": 0.125,
        "acc_rate": None,
        "avg_daily_trips": 0,
        "rating_label": "",
        "active": True,
        "recent_trip_ids": [1],
    },
}
# driver_slow has a ttl of 1 h and rows from 2025: Larder answers OUTSIDE_MAX_AGE, with the value.
SLOW = {1001: 0.5, 1003: None}
CUSTOMERS = {"c-1": {"lifetime_value": 1234.5, "segment": "vip"}, "c-2": {"lifetime_value": 0.0, "segment": "new"}}
MISSING_DRIVER, MISSING_CUSTOMER = 9999, "nobody"

ALL_DRIVER_REFS = [f"driver_hourly_stats:{name}" for name in DRIVER_FEATURES]
DRIVER_ROWS = [{"driver_id": d} for d in (1001, 1002, MISSING_DRIVER, 1003)]
SERVICE_ROWS = [
    {"driver_id": 1001, "customer_id": "c-1"},
    {"driver_id": MISSING_DRIVER, "customer_id": "c-2"},
    {"driver_id": 1002, "customer_id": MISSING_CUSTOMER},
]
# name -> (features or feature service, entity rows); each is asked with full_feature_names both ways.
READS = {
    "one_view": ({"features": ALL_DRIVER_REFS}, DRIVER_ROWS),
    "two_views": (
        {"features": ["driver_hourly_stats:conv_rate", "customer_profile:lifetime_value", "customer_profile:segment"]},
        SERVICE_ROWS,
    ),
    "feature_service": ({"feature_service": "driver_activity"}, SERVICE_ROWS),
    "outside_max_age": ({"features": ["driver_slow:slow_score", "driver_hourly_stats:conv_rate"]}, DRIVER_ROWS),
}
READ_CASES = [(name, full) for name in READS for full in (False, True)]


def columns(rows: list[dict]) -> dict[str, list]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def write_parquet(path: Path, key: str, key_values: list) -> None:
    """A file source must exist for `apply`; its rows are not read by this test."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = [datetime(2025, 3, 1, tzinfo=UTC)] * len(key_values)
    pq.write_table(pa.table({key: key_values, "event_timestamp": ts}), path)


@pytest.fixture(scope="module")
def larder(tmp_path_factory, feast_python):
    work = tmp_path_factory.mktemp("larder")
    repo = work / "repo"
    shutil.copytree(HERE / "larder_repo", repo)
    write_parquet(repo / "data" / "drivers.parquet", "driver_id", list(DRIVERS))
    write_parquet(repo / "data" / "customers.parquet", "customer_id", list(CUSTOMERS))
    spec = {
        "repo": str(repo),
        "project": PROJECT,
        "users": {"feast-client": ["model-server"], "describer": ["viewer"], "outsider": []},
        "service_account": {"client_id": SA_CLIENT, "secret": SA_SECRET, "roles": ["model-server"]},
        "rows": {
            "driver_hourly_stats": {
                "entities": {"driver_id": list(DRIVERS)},
                "features": {name: [row[name] for row in DRIVERS.values()] for name in DRIVER_FEATURES},
                "event_timestamps": [T1, T1, T2],
            },
            "driver_slow": {
                "entities": {"driver_id": list(SLOW)},
                "features": {"slow_score": list(SLOW.values())},
                "event_timestamps": [T1, T2],
            },
            "customer_profile": {
                "entities": {"customer_id": list(CUSTOMERS)},
                "features": {name: [row[name] for row in CUSTOMERS.values()] for name in ("lifetime_value", "segment")},
                "event_timestamps": [T1, T2],
            },
        },
    }
    (work / "spec.json").write_text(json.dumps(spec))
    port = free_port()
    env = larder_env(work, port)
    tokens = json.loads(run_setup(work / "spec.json", env))["tokens"]
    server = LarderServer(port, env, work / "server.log")
    try:
        server.wait()
        yield SimpleNamespace(url=server.url, token=tokens["feast-client"], tokens=tokens, log=server.log)
    finally:
        server.stop()


def feature_store_yaml(url: str, auth: dict) -> str:
    config = {
        "project": PROJECT,
        "provider": "local",
        "registry": "registry.db",
        "online_store": {"type": "remote", "path": url},
        "auth": auth,
        "entity_key_serialization_version": 3,
    }
    return json.dumps(config, indent=2)  # JSON is YAML


@pytest.fixture(scope="module")
def feast_repo(tmp_path_factory, larder, feast_python) -> Path:
    """A Feast repo as its user keeps it, applied with `feast apply` (local file registry)."""
    repo = tmp_path_factory.mktemp("feast_repo")
    shutil.copy(HERE / "feast_repo" / "definitions.py", repo)
    (repo / "feature_store.yaml").write_text(
        feature_store_yaml(larder.url, {"type": "oidc", "token_env_var": "LARDER_TOKEN"})
    )
    done = subprocess.run(  # noqa: S603 - the venv's feast CLI
        [str(feast_python.parent / "feast"), "apply"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env=feast_env(),
    )
    assert done.returncode == 0, done.stderr
    return repo


def feast_env(**extra: str) -> dict[str, str]:
    """The environment of a Feast process: nothing of Larder's, no usage reporting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LARDER_", "FEAST_"))}
    env.update(FEAST_USAGE="False", **extra)
    return env


def run_feast(feast_python: Path, repo: Path, ops: list[dict], **env: str) -> list[dict]:
    """feast_client.py in .feast-venv; one result per op."""
    done = subprocess.run(  # noqa: S603 - the venv's interpreter and our script
        [str(feast_python), str(HERE / "feast_client.py"), str(repo)],
        input=json.dumps(ops),
        capture_output=True,
        text=True,
        timeout=180,
        env=feast_env(**env),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout)
    assert len(results) == len(ops)
    return results


def larder_post(url: str, path: str, token: str, body: dict) -> tuple[int, dict | str]:
    request = urllib.request.Request(  # noqa: S310 - our loopback server
        url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def read_op(name: str, full: bool = False, token: str | None = None) -> dict:
    what, rows = READS[name]
    op = {"op": "read", **what, "entity_rows": rows, "full_feature_names": full}
    return {**op, "env": {"LARDER_TOKEN": token}} if token else op


WRITTEN_ROW = {
    "driver_id": 2001,
    "conv_rate": 0.75,
    "acc_rate": 0.5,
    "avg_daily_trips": 3,
    "rating_label": "bronze",
    "active": True,
    "recent_trip_ids": [4, 5],
}


def other_ops(larder) -> dict[str, dict]:
    """Errors, other callers, and a write, asked in the same Feast process after the reads."""
    one = [{"driver_id": 1001}]
    return {
        "unknown_view": {"op": "read", "features": ["no_such_view:x"], "entity_rows": one},
        "unknown_feature": {"op": "read", "features": ["driver_hourly_stats:no_such_feature"], "entity_rows": one},
        "describer": read_op("one_view", token=larder.tokens["describer"]),
        "outsider": read_op("one_view", token=larder.tokens["outsider"]),
        "bad_token": read_op("one_view", token="lrd_nopenope_" + "x" * 32),
        "write": {
            "op": "write",
            "feature_view": "driver_hourly_stats",
            "df": {**{k: [v] for k, v in WRITTEN_ROW.items()}, "event_timestamp": ["2025-03-03T12:00:00+00:00"]},
            "env": {"LARDER_TOKEN": larder.token},
        },
        "read_written": {"op": "read", "features": ALL_DRIVER_REFS, "entity_rows": [{"driver_id": 2001}]},
    }


@pytest.fixture(scope="module")
def feast(larder, feast_repo, feast_python) -> dict:
    """Every op asked of Feast's SDK, in one process (Feast takes seconds to import)."""
    reads = {case: read_op(*case) for case in READ_CASES}
    ops = {**reads, **other_ops(larder)}
    results = run_feast(feast_python, feast_repo, list(ops.values()), LARDER_TOKEN=larder.token)
    return dict(zip(ops, results, strict=True))


@pytest.fixture(scope="module")
def answers(larder, feast) -> dict:
    """Each read: (what the Feast SDK got, what Larder's API answers to the same request)."""
    out = {}
    for case in READ_CASES:
        what, rows = READS[case[0]]
        body = {**what, "entities": columns(rows), "full_feature_names": case[1]}
        status, answer = larder_post(larder.url, "/get-online-features", larder.token, body)
        assert status == 200, answer
        out[case] = (feast[case], answer)
    return out


def expected(feature: str, row: dict) -> tuple[object, str]:
    """(value, status) Larder must serve for `feature` (a `view:name` ref) of an entity row."""
    view, name = feature.split(":")
    if view == "driver_slow":
        if row["driver_id"] not in SLOW:
            return None, "NOT_FOUND"
        value = SLOW[row["driver_id"]]  # older than the ttl: the value, and the status says so
        return value, "NULL_VALUE" if value is None else "OUTSIDE_MAX_AGE"
    stored = DRIVERS.get(row["driver_id"]) if view == "driver_hourly_stats" else CUSTOMERS.get(row["customer_id"])
    if stored is None:
        return None, "NOT_FOUND"
    value = stored[name]
    return value, "NULL_VALUE" if value is None else "PRESENT"


@pytest.mark.parametrize(("name", "full"), READ_CASES)
def test_feast_sdk_gets_what_larder_serves(answers, name, full):
    feast, larder = answers[(name, full)]
    assert "error" not in feast, feast
    names = larder["metadata"]["feature_names"]
    assert feast["feature_names"] == names
    assert list(feast["to_dict"]) == names
    for column, result in zip(names, larder["results"], strict=True):
        assert feast["to_dict"][column] == result["values"], column
        assert feast["statuses"][column] == result["statuses"], column


@pytest.mark.parametrize(("name", "full"), READ_CASES)
def test_feast_sdk_gets_the_written_values(answers, name, full):
    feast, _ = answers[(name, full)]
    what, rows = READS[name]
    refs = what.get("features") or [
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:avg_daily_trips",
        "customer_profile:segment",
    ]
    join_keys = list(rows[0])
    assert feast["feature_names"][: len(join_keys)] == join_keys  # join keys first
    for key in join_keys:
        assert feast["to_dict"][key] == [row[key] for row in rows]
        assert feast["statuses"][key] == ["PRESENT"] * len(rows)
    returned = set(feast["feature_names"][len(join_keys) :])
    assert returned == {ref.replace(":", "__") if full else ref.split(":")[1] for ref in refs}
    for ref in refs:
        column = ref.replace(":", "__") if full else ref.split(":")[1]
        values, statuses = zip(*(expected(ref, row) for row in rows), strict=True)
        assert feast["to_dict"][column] == list(values), column
        assert feast["statuses"][column] == list(statuses), column


def test_errors_reach_the_feast_sdk_as_feast_errors(feast):
    """Larder's error bodies are Feast's (a JSON string of {module, class, message}), so
    the SDK raises the feast.errors class Feast's own server would make it raise."""
    assert feast["unknown_view"]["error"]["type"] == "FeatureViewNotFoundException", feast["unknown_view"]
    assert "no_such_view" in feast["unknown_view"]["error"]["message"]
    assert "no_such_feature" in feast["unknown_feature"]["error"]["message"], feast["unknown_feature"]
    # May see the view but not read it: 403, named.
    assert feast["describer"]["error"]["type"] == "FeastPermissionError", feast["describer"]
    assert "driver_hourly_stats" in feast["describer"]["error"]["message"]
    assert "READ_ONLINE" in feast["describer"]["error"]["message"]
    # May not even see it: the same answer as for a view that does not exist.
    assert feast["outsider"]["error"]["type"] == "FeatureViewNotFoundException", feast["outsider"]
    # A token no verifier accepts: 401, which the SDK (like against Feast) reports with the body.
    assert "401" in feast["bad_token"]["error"]["message"], feast["bad_token"]


def test_feast_sdk_writes_through_larder(larder, feast):
    """FeatureStore.write_to_online_store on a remote store posts /write-to-online-store
    with Feast's own columns (naive-UTC ISO `event_timestamp`, an empty `created`)."""
    assert feast["write"] == {"ok": True}
    assert feast["read_written"]["to_dict"] == {key: [value] for key, value in WRITTEN_ROW.items()}
    status, body = larder_post(
        larder.url,
        "/get-online-features",
        larder.token,
        {"features": ALL_DRIVER_REFS, "entities": {"driver_id": [2001]}},
    )
    assert status == 200, body
    names = body["metadata"]["feature_names"]
    assert {n: r["values"][0] for n, r in zip(names, body["results"], strict=True)} == WRITTEN_ROW
    assert {r["statuses"][0] for r in body["results"]} == {"PRESENT"}


def test_feast_sdk_fetches_a_service_account_token_itself(larder, feast_repo, feast_python, tmp_path):
    """Feast's own client-credentials flow (discovery, then POST /o/token/ with the client
    secret in the body) against Larder's built-in provider, then the same read."""
    shutil.copy(feast_repo / "definitions.py", tmp_path)
    shutil.copy(feast_repo / "registry.db", tmp_path)
    auth = {
        "type": "oidc",
        "client_id": SA_CLIENT,
        "client_secret": SA_SECRET,
        "auth_discovery_url": f"{larder.url}/o/.well-known/openid-configuration",
    }
    (tmp_path / "feature_store.yaml").write_text(feature_store_yaml(larder.url, auth))
    (result,) = run_feast(feast_python, tmp_path, [read_op("one_view")])
    assert "error" not in result, result
    assert result["to_dict"]["conv_rate"] == [0.5, 0.25, None, 0.125]
    assert result["statuses"]["conv_rate"] == ["PRESENT", "PRESENT", "NOT_FOUND", "PRESENT"]
