"""Runs in .feast-venv (never in Larder's): Feast 0.67's get_historical_features with its
`file` offline store, on the Parquet files bench/historical.py generated.

    .feast-venv/bin/python bench/historical_feast.py SOURCE.parquet ENTITY.parquet

Builds a throwaway repo (file offline store, one entity, one view of 10 features, ttl
2 days, created column), reads the entity frame into pandas (not timed), then times
`get_historical_features(...).to_df()`. Prints one JSON line: seconds, CPU seconds, rows, non-null.
"""

import json
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.types import Float32, Int64

FEATURES = [(f"f{i}", Float32 if i < 5 else Int64) for i in range(10)]


def main() -> int:
    source_path, entity_path = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as repo:
        Path(repo, "feature_store.yaml").write_text(
            "project: bench\n"
            f"registry: {repo}/registry.db\n"
            "provider: local\n"
            f"online_store: {{type: sqlite, path: {repo}/online.db}}\n"
            "offline_store: {type: file}\n"
            "entity_key_serialization_version: 3\n"
        )
        store = FeatureStore(repo_path=repo)
        driver = Entity(name="driver", join_keys=["driver_id"])
        source = FileSource(
            name="driver_stats",
            path=source_path,
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        )
        view = FeatureView(
            name="driver_stats",
            entities=[driver],
            ttl=timedelta(days=2),
            schema=[Field(name=name, dtype=dtype) for name, dtype in FEATURES],
            source=source,
        )
        store.apply([driver, view])
        entity_df = pd.read_parquet(entity_path)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_start, start = usage.ru_utime + usage.ru_stime, time.perf_counter()
        df = store.get_historical_features(
            entity_df=entity_df, features=[f"driver_stats:{name}" for name, _ in FEATURES]
        ).to_df()
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime - cpu_start
    hwm = None
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024 / 1e6  # peak RSS of this process (see historical.high_water_mb)
    result = {"seconds": seconds, "cpu": cpu, "rows": len(df), "non_null": int(df["f0"].notna().sum()), "hwm_mb": hwm}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
