"""Runs in .feast-venv (never in Larder's): loads the benchmark workload into Feast's Redis
online store through Feast's own write path, `FeatureStore.write_to_online_store`.

    .feast-venv/bin/python bench/feast_load.py FEAST_REPO WORKLOAD.parquet VIEW

Prints `{"rows": n, "seconds": s}`. Called by bench/online.py.
"""

import json
import sys
import time

import pandas as pd
from feast import FeatureStore

CHUNK = 10_000  # rows per call, like a materialization chunk


def main(repo: str, parquet: str, view: str) -> int:
    store = FeatureStore(repo_path=repo)
    df = pd.read_parquet(parquet)
    started = time.perf_counter()
    for start in range(0, len(df), CHUNK):
        store.write_to_online_store(view, df.iloc[start : start + CHUNK])
    print(json.dumps({"rows": len(df), "seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
