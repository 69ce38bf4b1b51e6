"""A feature repo with real Parquet history for the historical-retrieval tests (API,
jobs, client, offline push), applied through catalog.repo like a real repo.

History of driver 1001 in `driver_hourly_stats` (ttl 2h), Feast's verified matrix
(feast-reference §2.2):
    10:00 conv 0.1 | 11:00 conv 0.2 created 11:00 | 11:00 conv 0.3 created 12:00 (wins the tie)
driver 1002: 08:00 conv 0.5 (so 10:30 is inside the ttl, 10:01 + 2h... see EXPECTED).
Customer "c1": balance 10.0 at 01:00 (customer_profile has ttl 0: unlimited lookback).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.test import Client

from catalog.repo import apply, load_repo
from catalog.repo.testing import write_repo
from tests.http import post_json

PROJECT = "hist"
DAY = datetime(2024, 5, 1, tzinfo=UTC)
URL = "/api/v1/historical-features"


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


# Entity rows and the conv_rate each must get (None: no row inside [T - 2h, T]).
ENTITY_ROWS: list[tuple[int, datetime, str, int, float | None]] = [
    # driver_id, event_timestamp, customer_id, val_to_add, expected conv_rate
    (1001, at(10, 30), "c1", 1, 0.1),
    (1001, at(11), "c1", 2, 0.3),  # tie on 11:00: the later created wins
    (1001, at(9), "c2", 3, None),  # before any row
    (1001, at(20), "c1", 4, None),  # outside the 2h ttl
    (1002, at(10, 30), "c2", 5, 0.5),  # 08:30 row, inside the ttl
    (9999, at(10, 30), "c1", 6, None),  # unknown driver
    (1001, at(10, 30), "c1", 7, 0.1),  # a duplicate row is kept
]
BALANCE = {"c1": 10.0, "c2": None}  # c2 has no row; c1's 01:00 row is found at any later time


def entities_json() -> dict[str, list[Any]]:
    return {
        "driver_id": [r[0] for r in ENTITY_ROWS],
        "event_timestamp": [iso(r[1]) for r in ENTITY_ROWS],
        "customer_id": [r[2] for r in ENTITY_ROWS],
        "val_to_add": [r[3] for r in ENTITY_ROWS],
    }


def entity_table() -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array([r[0] for r in ENTITY_ROWS], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in ENTITY_ROWS], pa.timestamp("us", tz="UTC")),
            "customer_id": pa.array([r[2] for r in ENTITY_ROWS], pa.string()),
            "val_to_add": pa.array([r[3] for r in ENTITY_ROWS], pa.int64()),
        }
    )


def expected_conv() -> list[float | None]:
    return [r[4] for r in ENTITY_ROWS]


def write_data(root: Path) -> None:
    """The Parquet history (a folder for drivers, so appended files join it)."""
    drivers = root / "data" / "driver"
    drivers.mkdir(parents=True, exist_ok=True)
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1001, 1001, 1001, 1002], pa.int64()),
                "event_timestamp": pa.array([at(10), at(11), at(11), at(8, 30)], ts),
                "created": pa.array([at(10), at(11), at(12), at(8, 30)], ts),
                "conv_rate": pa.array([0.1, 0.2, 0.3, 0.5], pa.float32()),
                "acc_rate": pa.array([0.9, 0.8, 0.7, 0.6], pa.float32()),
                "trips": pa.array([10, 11, 12, 20], pa.int64()),
            }
        ),
        drivers / "part-0.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array(["c1"], pa.string()),
                "ts": pa.array([at(1)], ts),
                "balance": pa.array([10.0], pa.float64()),
                "tier": pa.array(["gold"], pa.string()),
            }
        ),
        root / "data" / "customer.parquet",
    )


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
                    "path": "data/driver",
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
                {
                    "name": "driver_fresh",
                    "entities": ["driver"],
                    "source": "driver_push",
                    "ttl": "2h",
                    "schema": driver_features,
                },
                {
                    "name": "customer_profile",
                    "entities": ["customer"],
                    "source": "customer_daily",
                    "schema": [{"name": "balance", "dtype": "Float64"}, {"name": "tier", "dtype": "String"}],
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
                    "actions": ["DESCRIBE", "READ_OFFLINE"],
                    "roles": ["reader"],
                },
                {
                    "name": "service-readers",
                    "types": ["feature_service"],
                    "actions": ["DESCRIBE", "READ_OFFLINE"],
                    "roles": ["service-reader"],
                },
                {"name": "describers", "actions": ["DESCRIBE"], "roles": ["describer"]},
                {
                    "name": "online-readers",
                    "types": ["feature_view", "on_demand_feature_view"],
                    "actions": ["DESCRIBE", "READ_ONLINE"],
                    "roles": ["online-reader"],
                },
                {
                    "name": "dataset-makers",
                    "types": ["saved_dataset"],
                    "actions": ["CREATE", "DESCRIBE"],
                    "roles": ["dataset-maker"],
                },
                {
                    "name": "pushers",
                    "types": ["feature_view", "data_source"],
                    "actions": ["DESCRIBE", "WRITE_ONLINE", "WRITE_OFFLINE"],
                    "roles": ["pusher"],
                },
                {
                    "name": "online-pushers",
                    "types": ["feature_view", "data_source"],
                    "actions": ["DESCRIBE", "WRITE_ONLINE"],
                    "roles": ["online-pusher"],
                },
            ]
        },
    }


def apply_repo(root: Path, files: dict[str, Any] | None = None) -> Path:
    """Write the data and the repo under `root` and apply it as `manage.py apply` would."""
    write_data(root)
    definition = load_repo(write_repo(root, files or repo_files(), ()))
    assert not definition.errors, definition.errors
    apply(definition)
    return root


def post(client: Client, body: Any, path: str = URL, **headers: str):
    """POST `body` to the historical-features API (or `path`)."""
    return post_json(client, path, body, **headers)


def request_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": PROJECT,
        "features": ["driver_hourly_stats:conv_rate", "customer_profile:balance"],
        "entities": entities_json(),
    }
    body.update(extra)
    return body
