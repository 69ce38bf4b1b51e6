"""Helpers for tests (ours and other apps'): a small valid repo as data, written to a folder.

files = sample_repo()
files["features.yaml"]["feature_views"][0]["ttl"] = "3h"
definition = load_repo(write_repo(tmp_path, files))
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SAMPLE_DATA_FILES = ("data/driver_stats.parquet",)

_SAMPLE: dict[str, Any] = {
    "project.yaml": {"project": {"name": "driver_stats", "description": "Driver features", "tags": {"team": "ml"}}},
    "entities.yaml": {
        "entities": [{"name": "driver", "join_keys": ["driver_id"], "value_type": "Int64", "description": "A driver"}]
    },
    "sources.yaml": {
        "data_sources": [
            {
                "name": "driver_hourly",
                "kind": "file",
                "path": "data/driver_stats.parquet",
                "timestamp_field": "event_timestamp",
                "created_timestamp_column": "created",
            },
            {"name": "driver_push", "kind": "push", "batch_source": "driver_hourly"},
            {"name": "trip_request", "kind": "request", "schema": [{"name": "val_to_add", "dtype": "Int64"}]},
        ]
    },
    "features.yaml": {
        "feature_views": [
            {
                "name": "driver_hourly_stats",
                "entities": ["driver"],
                "source": "driver_hourly",
                "ttl": "2h",
                "schema": [
                    {"name": "conv_rate", "dtype": "Float32", "description": "Conversion rate"},
                    {"name": "acc_rate", "dtype": "Float32"},
                    {"name": "avg_daily_trips", "dtype": "Int64"},
                ],
                "tags": {"team": "ml"},
            }
        ],
        "on_demand_feature_views": [
            {
                "name": "conv_rate_plus_val",
                "sources": ["driver_hourly_stats", "trip_request"],
                "mode": "expression",
                "schema": [{"name": "conv_rate_plus_val1", "dtype": "Float64"}],
                "expressions": {"conv_rate_plus_val1": "conv_rate + val_to_add"},
            }
        ],
        "feature_services": [
            {
                "name": "driver_activity",
                "features": [
                    {"feature_view": "driver_hourly_stats", "features": ["conv_rate", "acc_rate"]},
                    {"feature_view": "conv_rate_plus_val"},
                ],
            }
        ],
    },
    "permissions.yaml": {
        "permissions": [
            {
                "name": "scientists-read",
                "types": ["FeatureView", "on_demand_feature_view"],
                "name_patterns": [".*"],
                "actions": ["DESCRIBE", "READ"],
                "roles": ["data-scientist"],
            }
        ]
    },
}


def sample_repo() -> dict[str, Any]:
    """A fresh, valid repo: {file name: YAML content}, safe to mutate."""
    return copy.deepcopy(_SAMPLE)


def write_repo(root: Path, files: dict[str, Any], data_files: tuple[str, ...] = SAMPLE_DATA_FILES) -> Path:
    """Write `files` ({relative name: mapping or raw text}) under `root`, plus empty
    placeholder data files (validation only checks that file-source paths exist).
    Files of a previous write that are not in `files` are removed."""
    root.mkdir(parents=True, exist_ok=True)
    for old in [*root.rglob("*.yaml"), *root.rglob("*.yml")]:
        old.unlink()
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    for name in data_files:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    return root


def sample_transform(inputs: dict[str, list]) -> dict[str, list]:
    """An importable python-mode transformation for tests: conv_rate + 1."""
    return {"conv_rate_plus_one": [None if v is None else v + 1 for v in inputs["conv_rate"]]}
