"""Offline engines: point-in-time joins and window reads over the sources of feature views.

`retrieval.get_historical_features` is the entry point for training sets; engines
(`duckdb` over Parquet, `postgres` in-database) are chosen by source kind in `registry`.
"""
