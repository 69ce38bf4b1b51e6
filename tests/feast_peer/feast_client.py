"""Runs in .feast-venv (never in Larder's): a Feast SDK user calling Larder as a remote online store.

    .feast-venv/bin/python tests/feast_peer/feast_client.py REPO_DIR < ops.json > results.json

REPO_DIR holds a feature_store.yaml (`online_store: {type: remote, path: ...}`, `auth`)
and the registry made by `feast apply`. stdin is a JSON list of operations:

    {"op": "read", "features": [refs] | "feature_service": name, "entity_rows": [...],
     "full_feature_names": bool}
    {"op": "write", "feature_view": name, "df": {column: [values]}}

An op may carry `"env": {name: value}`, set before it runs: the token read through
`auth.token_env_var` is looked up at every request, so one process can call as several
users.

stdout is one JSON result per operation, in order: for a read, what the SDK returned
(`to_dict()`, the feature names of the response metadata, and each column's statuses
by name); for a write, `{"ok": true}`; for either, `{"error": {"type", "message"}}`
when the SDK raised. Timestamps in a write's df are ISO strings (parsed here).
"""

import json
import os
import sys

import pandas as pd
from feast import FeatureStore
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus


def read(store: FeatureStore, op: dict) -> dict:
    features = store.get_feature_service(op["feature_service"]) if "feature_service" in op else op["features"]
    response = store.get_online_features(
        features=features,
        entity_rows=op["entity_rows"],
        full_feature_names=op.get("full_feature_names", False),
    )
    proto = response.proto
    names = list(proto.metadata.feature_names.val)
    statuses = {
        name: [FieldStatus.Name(s) for s in vector.statuses] for name, vector in zip(names, proto.results, strict=True)
    }
    return {"to_dict": response.to_dict(), "feature_names": names, "statuses": statuses}


def write(store: FeatureStore, op: dict) -> dict:
    df = pd.DataFrame(op["df"])
    for column in ("event_timestamp", "created"):
        if column in df:
            df[column] = pd.to_datetime(df[column], utc=True)
    store.write_to_online_store(op["feature_view"], df)
    return {"ok": True}


def main() -> int:
    store = FeatureStore(repo_path=sys.argv[1])
    results = []
    for op in json.load(sys.stdin):
        os.environ.update(op.get("env", {}))
        try:
            results.append(read(store, op) if op["op"] == "read" else write(store, op))
        except Exception as exc:  # the test asserts on what the SDK raised
            results.append({"error": {"type": type(exc).__name__, "message": str(exc)}})
    json.dump(results, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
