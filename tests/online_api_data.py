"""A feature repo and rows for the online-serving API tests (unit: sql store; integration:
Redis), applied through catalog.repo like a real repo, and the helpers they share."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from catalog.repo import apply, load_repo
from catalog.repo.testing import write_repo
from serving import ingest, registry_cache
from serving.online import get_online_store
from tests.http import post_json as post  # noqa: F401 - the suites import it from here

PROJECT = "shop"
NOW = datetime.now(UTC).replace(microsecond=0)
FRESH = NOW - timedelta(minutes=10)
STALE = NOW - timedelta(hours=3)  # driver_hourly_stats has ttl 2h
DATA_FILES = ("data/driver.parquet", "data/customer.parquet")


def add_request_value(inputs: dict[str, list]) -> dict[str, list]:
    """A python-mode transformation: conv_rate + 10 * val_to_add (null in, null out)."""
    return {
        "conv_py_val": [
            None if c is None or v is None else c + 10 * v
            for c, v in zip(inputs["conv_rate"], inputs["val_to_add"], strict=True)
        ]
    }


def repo_files() -> dict[str, Any]:
    driver_features = [
        {"name": "conv_rate", "dtype": "Float32"},
        {"name": "acc_rate", "dtype": "Float32"},
        {"name": "avg_daily_trips", "dtype": "Int64"},
    ]
    return {
        "project.yaml": {"project": {"name": PROJECT}},
        "entities.yaml": {
            "entities": [
                {"name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"},
                {"name": "customer", "join_keys": ["customer_id"], "value_type": "String"},
            ]
        },
        "sources.yaml": {
            "data_sources": [
                {
                    "name": "driver_hourly",
                    "kind": "file",
                    "path": "data/driver.parquet",
                    "timestamp_field": "event_timestamp",
                    "created_timestamp_column": "created",
                    "field_mapping": {"trips": "avg_daily_trips"},
                },
                {"name": "driver_push", "kind": "push", "batch_source": "driver_hourly"},
                {"name": "customer_daily", "kind": "file", "path": "data/customer.parquet", "timestamp_field": "ts"},
                {"name": "trip_request", "kind": "request", "schema": [{"name": "val_to_add", "dtype": "Int64"}]},
            ]
        },
        "views.yaml": {
            "feature_views": [
                {
                    "name": "driver_hourly_stats",
                    "entities": ["driver"],
                    "source": "driver_hourly",
                    "ttl": "2h",
                    "schema": driver_features,
                },
                {"name": "driver_fresh", "entities": ["driver"], "source": "driver_push", "schema": driver_features},
                {
                    "name": "customer_profile",
                    "entities": ["customer"],
                    "source": "customer_daily",
                    "schema": [
                        {"name": "balance", "dtype": "Float64"},
                        {"name": "tier", "dtype": "String"},
                        {"name": "blob", "dtype": "Bytes"},
                        {"name": "seen", "dtype": "UnixTimestamp"},
                        {"name": "labels", "dtype": "Array(String)"},
                        {"name": "vip", "dtype": "Bool"},
                    ],
                },
            ],
            "on_demand_feature_views": [
                {
                    "name": "conv_plus",
                    "sources": ["driver_hourly_stats", "trip_request"],
                    "mode": "expression",
                    "schema": [{"name": "conv_plus_val", "dtype": "Float64"}],
                    "expressions": {"conv_plus_val": "conv_rate + val_to_add"},
                },
                {
                    "name": "conv_py",
                    "sources": ["driver_hourly_stats", "trip_request"],
                    "mode": "python",
                    "function": "tests.online_api_data.add_request_value",
                    "schema": [{"name": "conv_py_val", "dtype": "Float64"}],
                },
            ],
            "feature_services": [
                {
                    "name": "ranker",
                    "features": [
                        {"feature_view": "driver_hourly_stats", "features": ["conv_rate"]},
                        {"feature_view": "conv_plus"},
                    ],
                },
                {
                    "name": "aliased",
                    "features": [
                        {"feature_view": "driver_hourly_stats", "features": ["conv_rate"], "alias": "hourly"},
                        {"feature_view": "driver_fresh", "features": ["conv_rate"], "alias": "fresh"},
                    ],
                },
            ],
        },
        "permissions.yaml": {
            "permissions": [
                {
                    "name": "readers",
                    "types": ["feature_view", "on_demand_feature_view"],
                    "actions": ["DESCRIBE", "READ_ONLINE"],
                    "roles": ["reader"],
                },
                {
                    "name": "service-readers",
                    "types": ["feature_service"],
                    "actions": ["DESCRIBE", "READ_ONLINE"],
                    "roles": ["service-reader"],
                },
                {"name": "describers", "actions": ["DESCRIBE"], "roles": ["describer"]},
                {
                    "name": "odfv-only",
                    "types": ["on_demand_feature_view"],
                    "actions": ["DESCRIBE", "READ_ONLINE"],
                    "roles": ["odfv-only"],
                },
                {
                    "name": "writers",
                    "types": ["feature_view", "data_source"],
                    "actions": ["DESCRIBE", "WRITE_ONLINE", "WRITE_OFFLINE"],
                    "roles": ["writer"],
                },
                {
                    "name": "online-writers",
                    "types": ["feature_view"],
                    "name_patterns": ["driver_fresh"],
                    "actions": ["WRITE_ONLINE"],
                    "roles": ["online-writer"],
                },
            ]
        },
    }


def apply_repo(root: Path, files: dict[str, Any] | None = None) -> None:
    """Apply the repo (or a changed copy of it) as `manage.py apply` would."""
    definition = load_repo(write_repo(root, files or repo_files(), DATA_FILES))
    assert not definition.errors, definition.errors
    apply(definition)


def view_meta(name: str):
    return registry_cache.snapshot(registry_cache.project_ref(PROJECT)).feature_views[name]


def write(view: str, df: dict[str, list]) -> None:
    """Rows into the online store through the API's own write path (serving.ingest)."""
    meta = view_meta(view)
    ingest.write(meta, ingest.prepare(meta, df))


def count(view: str) -> int:
    return get_online_store().count(view_meta(view).key)


def seed_drivers() -> None:
    """1001 fresh, 1002 fresh with a null acc_rate, 1003 stale (outside the 2h ttl); 9999 absent."""
    write(
        "driver_hourly_stats",
        {
            "driver_id": [1001, 1002, 1003],
            "event_timestamp": [FRESH.isoformat(), FRESH.isoformat(), STALE.isoformat()],
            "conv_rate": [0.5, 0.25, 0.75],
            "acc_rate": [0.9, None, 0.8],
            "avg_daily_trips": [10, 20, 30],
        },
    )


def feast_error(response) -> dict[str, str]:
    """Feast's error body: a JSON string holding {module, class, message}."""
    inner = json.loads(response.content)
    assert isinstance(inner, str), response.content
    return json.loads(inner)


def columns(response) -> dict[str, dict[str, list]]:
    """name -> {values, statuses, event_timestamps}, from a /get-online-features answer."""
    data = response.json()
    names = data["metadata"]["feature_names"]
    assert len(names) == len(data["results"])
    return dict(zip(names, data["results"], strict=True))
