"""Runs in .feast-venv (never in Larder's): Feast 0.67's materialize with its local compute
engine, from the Parquet file bench/historical.py generated into Redis.

    .feast-venv/bin/python bench/materialize_feast.py SOURCE.parquet START END REDIS_HOST:PORT DB

Builds a throwaway repo (file offline store, Redis online store on database DB, one
entity, one view of 10 features, ttl 2 days, created column), applies it (not timed),
then times `FeatureStore.materialize(START, END)`: what `feast materialize START END`
runs after loading the repo. Prints one JSON line: seconds, CPU seconds, entities online.
"""

import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta

import redis
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.types import Float32, Int64

FEATURES = [(f"f{i}", Float32 if i < 5 else Int64) for i in range(10)]


def main() -> int:
    source_path, start, end, where, db = sys.argv[1:6]
    host, port = where.split(":")
    client = redis.Redis(host=host, port=int(port), db=int(db))
    client.flushdb()
    with tempfile.TemporaryDirectory() as repo:
        with open(f"{repo}/feature_store.yaml", "w") as fh:
            fh.write(
                "project: bench\n"
                f"registry: {repo}/registry.db\n"
                "provider: local\n"
                f'online_store: {{type: redis, connection_string: "{host}:{port},db={db}"}}\n'
                "offline_store: {type: file}\n"
                "entity_key_serialization_version: 3\n"
            )
        store = FeatureStore(repo_path=repo)
        driver = Entity(name="driver", join_keys=["driver_id"])
        source = FileSource(
            name="driver_stats", path=source_path, timestamp_field="event_timestamp", created_timestamp_column="created"
        )
        view = FeatureView(
            name="driver_stats",
            entities=[driver],
            ttl=timedelta(days=2),
            schema=[Field(name=name, dtype=dtype) for name, dtype in FEATURES],
            source=source,
            online=True,
        )
        store.apply([driver, view])
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_start, started = usage.ru_utime + usage.ru_stime, time.perf_counter()
        store.materialize(datetime.fromisoformat(start), datetime.fromisoformat(end))
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime - cpu_start
    entities = client.dbsize()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "entities": entities}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
