"""A small feature repo with Parquet history for the materialization tests, and the
expected online state computed straight from the Parquet with pyarrow.

Project `mat`:
- `hourly` (ttl 1d, online): drivers 1..N, one row per hour over DAYS days ending at
  REFERENCE, plus a late correction (same driver and hour, later `created`, new value);
- `pushed` reads a push source whose batch source is the same file;
- `offline_only` (online: false) cannot be materialized.
Roles: `operator` may DESCRIBE and WRITE_ONLINE every view; `viewer` may only DESCRIBE.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.repo import apply, load_repo
from catalog.repo.testing import write_repo

PROJECT = "mat"
REFERENCE = datetime(2026, 1, 10, tzinfo=UTC)
DAYS = 4
TS = pa.timestamp("us", tz="UTC")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "driver_stats"


def write_history(path: Path, drivers: int = 20, days: int = DAYS, reference: datetime = REFERENCE) -> pa.Table:
    """Hourly rows per driver, with nulls and one late correction; written to `path`."""
    ids, events, created, conv, trips = [], [], [], [], []
    hours = days * 24
    for d in range(1, drivers + 1):
        for h in range(hours):
            at = reference - timedelta(hours=hours - 1 - h)
            ids.append(d)
            events.append(at)
            created.append(at + timedelta(minutes=1))
            conv.append(None if (d + h) % 17 == 0 else round((d * 31 + h) % 100 / 100, 2))
            trips.append(d * 1000 + h)
    # The late correction: driver 1's last hour again, created later, another value.
    ids.append(1)
    events.append(reference)
    created.append(reference + timedelta(hours=1))
    conv.append(0.99)
    trips.append(-1)
    table = pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(events, TS),
            "created": pa.array(created, TS),
            "conv_rate": pa.array(conv, pa.float64()),
            "trips": pa.array(trips, pa.int64()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table


def repo_files(schedule: dict[str, Any] | None = None) -> dict[str, Any]:
    hourly: dict[str, Any] = {
        "name": "hourly",
        "entities": ["driver"],
        "source": "history",
        "ttl": "1d",
        "schema": [{"name": "conv_rate", "dtype": "Float64"}, {"name": "trips", "dtype": "Int64"}],
    }
    if schedule is not None:
        hourly["schedule"] = schedule
    return {
        "project.yaml": {"project": {"name": PROJECT}},
        "entities.yaml": {"entities": [{"name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"}]},
        "sources.yaml": {
            "data_sources": [
                {
                    "name": "history",
                    "kind": "file",
                    "path": "data/history.parquet",
                    "timestamp_field": "event_timestamp",
                    "created_timestamp_column": "created",
                },
                {"name": "stream", "kind": "push", "batch_source": "history"},
            ]
        },
        "views.yaml": {
            "feature_views": [
                hourly,
                {
                    "name": "pushed",
                    "entities": ["driver"],
                    "source": "stream",
                    "schema": [{"name": "conv_rate", "dtype": "Float64"}],
                },
                {
                    "name": "offline_only",
                    "entities": ["driver"],
                    "source": "history",
                    "online": False,
                    "offline": True,
                    "schema": [{"name": "trips", "dtype": "Int64"}],
                },
            ]
        },
        "permissions.yaml": {
            "permissions": [
                {"name": "operators", "actions": ["DESCRIBE", "WRITE_ONLINE"], "roles": ["operator"]},
                {"name": "viewers", "actions": ["DESCRIBE"], "roles": ["viewer"]},
            ]
        },
    }


def apply_repo(root: Path, schedule: dict[str, Any] | None = None, drivers: int = 20) -> pa.Table:
    """Write the repo and its history under `root`, apply it; returns the history table."""
    table = write_history(root / "data" / "history.parquet", drivers=drivers)
    apply(load_repo(write_repo(root, repo_files(schedule))))
    return table


def apply_example_repo(root: Path, reference: datetime) -> Path:
    """The example repo (examples/driver_stats) with its data generated for `reference`
    under `root`, applied; returns the repo folder."""
    import subprocess
    import sys

    repo = root / "driver_stats"
    repo.mkdir(parents=True, exist_ok=True)
    for yaml_file in EXAMPLE.glob("*.yaml"):
        shutil.copy(yaml_file, repo / yaml_file.name)
    subprocess.run(  # noqa: S603 - our own generator
        [
            sys.executable,
            str(EXAMPLE / "generate.py"),
            "--out",
            str(repo / "data"),
            "--reference",
            reference.isoformat(),
        ],
        check=True,
        capture_output=True,
    )
    apply(load_repo(repo))
    return repo


def expected_latest(
    table: pa.Table,
    keys: Iterable[str],
    features: Iterable[str],
    start: datetime,
    end: datetime,
    timestamp: str = "event_timestamp",
    created: str | None = "created",
) -> dict[tuple, tuple]:
    """Per entity key: (features..., event time) of its latest row with start <= ts <= end,
    ties on ts broken by the latest created: the online state a materialization must leave."""
    keys, features = list(keys), list(features)
    ts = table.column(timestamp)
    mask = pc.and_(pc.greater_equal(ts, pa.scalar(start, ts.type)), pc.less_equal(ts, pa.scalar(end, ts.type)))
    window = table.filter(mask)
    order = [(k, "ascending", "at_start") for k in keys] + [(timestamp, "ascending", "at_start")]
    if created:
        order.append((created, "ascending", "at_start"))  # a null created ranks lowest
    latest: dict[tuple, tuple] = {}
    for row in window.sort_by(order).to_pylist():  # later rows overwrite earlier
        latest[tuple(row[k] for k in keys)] = (*(row[f] for f in features), row[timestamp])
    return latest
