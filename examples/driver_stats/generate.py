"""Write the example repo's Parquet files: deterministic, seeded synthetic ride-hailing data.

The rows cover the 14 days before a reference time (by default now, rounded down to
the hour, so that materializing "up to now" finds fresh rows and online lookups fall
inside the views' TTLs). The same seed and reference always give the same files.

    python examples/driver_stats/generate.py [--out DIR] [--reference 2026-01-01T00:00:00Z] [--seed 42]

The data has what a real feed has and what point-in-time joins must get right:
a few nulls, and a few late corrections (same driver and event time, a later
`created` and a different value) that the `created` column must break ties on.
"""

import argparse
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_OUT = Path(__file__).resolve().parent / "data"
DEFAULT_SEED = 42
DAYS = 14
N_DRIVERS = 50
N_CUSTOMERS = 100
N_CORRECTIONS = 20
FIRST_DRIVER_ID = 1001
FIRST_CUSTOMER_ID = 5001

TIMESTAMP = pa.timestamp("us", tz="UTC")

DRIVER_STATS_SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("event_timestamp", TIMESTAMP),
        ("created", TIMESTAMP),
        ("conv_rate", pa.float32()),
        ("acc_rate", pa.float32()),
        ("avg_daily_trips", pa.int64()),
    ]
)
CUSTOMER_PROFILE_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("event_timestamp", TIMESTAMP),
        ("created", TIMESTAMP),
        ("current_balance", pa.float32()),
        ("avg_passenger_count", pa.float32()),
        ("lifetime_trip_count", pa.int64()),
    ]
)
DRIVER_DAILY_SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("event_timestamp", TIMESTAMP),
        ("created", TIMESTAMP),
        ("total_trips", pa.int64()),
        ("total_earnings", pa.float64()),
        ("hours_online", pa.float32()),
    ]
)

# File name -> schema; the YAML's file sources point at these paths under data/.
FILES = {
    "driver_stats.parquet": DRIVER_STATS_SCHEMA,
    "customer_profile.parquet": CUSTOMER_PROFILE_SCHEMA,
    "driver_daily.parquet": DRIVER_DAILY_SCHEMA,
}


def default_reference(now: datetime | None = None) -> datetime:
    """Now in UTC, rounded down to the hour: the newest hourly row is never in the future."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _micros(ts: datetime) -> int:
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def _with_nulls(values: np.ndarray, rng: np.random.Generator, rate: float) -> list:
    mask = rng.random(values.shape[0]) < rate
    return [None if m else v for m, v in zip(mask.tolist(), values.tolist(), strict=True)]


def driver_stats(reference: datetime, rng: np.random.Generator) -> pa.Table:
    """Hourly rows per driver for DAYS days ending at `reference`, plus late corrections."""
    hours = DAYS * 24
    ref_us = _micros(reference)
    hour_us = 3_600_000_000
    driver_ids = np.arange(FIRST_DRIVER_ID, FIRST_DRIVER_ID + N_DRIVERS, dtype=np.int64)

    # Row i = driver (i // hours), hour offset (i % hours); the last hour is `reference` itself.
    ids = np.repeat(driver_ids, hours)
    offsets = np.tile(np.arange(hours - 1, -1, -1, dtype=np.int64), N_DRIVERS)
    events = ref_us - offsets * hour_us
    created = events + rng.integers(1, 300, size=ids.shape[0]) * 1_000_000

    base_conv = np.repeat(rng.beta(5, 3, N_DRIVERS), hours)
    base_acc = np.repeat(rng.beta(8, 2, N_DRIVERS), hours)
    base_trips = np.repeat(rng.integers(5, 40, N_DRIVERS), hours)
    hour_of_day = (events // hour_us) % 24
    daily_cycle = 0.08 * np.sin(2 * np.pi * hour_of_day / 24)
    conv = np.clip(base_conv + daily_cycle + rng.normal(0, 0.03, ids.shape[0]), 0, 1).astype(np.float32)
    acc = np.clip(base_acc + rng.normal(0, 0.02, ids.shape[0]), 0, 1).astype(np.float32)
    trips = np.maximum(base_trips + rng.integers(-3, 4, ids.shape[0]), 0).astype(np.int64)

    # Late corrections: rows at least a day old are re-sent an hour later with a new value.
    old_rows = np.flatnonzero(offsets >= 24)
    fixed = rng.choice(old_rows, size=N_CORRECTIONS, replace=False)
    ids = np.concatenate([ids, ids[fixed]])
    events = np.concatenate([events, events[fixed]])
    created = np.concatenate([created, created[fixed] + hour_us])
    conv = np.concatenate([conv, np.clip(conv[fixed] + 0.05, 0, 1).astype(np.float32)])
    acc = np.concatenate([acc, acc[fixed]])
    trips = np.concatenate([trips, trips[fixed] + 1])

    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array(events, TIMESTAMP),
            pa.array(created, TIMESTAMP),
            pa.array(_with_nulls(conv, rng, 0.01), pa.float32()),
            pa.array(_with_nulls(acc, rng, 0.01), pa.float32()),
            pa.array(_with_nulls(trips, rng, 0.005), pa.int64()),
        ],
        schema=DRIVER_STATS_SCHEMA,
    )


def customer_profile(reference: datetime, rng: np.random.Generator) -> pa.Table:
    """One profile snapshot per customer per day, the newest at `reference`."""
    day_us = 86_400_000_000
    ref_us = _micros(reference)
    customer_ids = np.arange(FIRST_CUSTOMER_ID, FIRST_CUSTOMER_ID + N_CUSTOMERS, dtype=np.int64)

    ids = np.repeat(customer_ids, DAYS)
    days_back = np.tile(np.arange(DAYS - 1, -1, -1, dtype=np.int64), N_CUSTOMERS)
    events = ref_us - days_back * day_us
    created = events + rng.integers(60, 3_600, size=ids.shape[0]) * 1_000_000

    balance = np.repeat(rng.gamma(2.0, 40.0, N_CUSTOMERS), DAYS) + rng.normal(0, 5, ids.shape[0])
    balance = np.round(np.maximum(balance, 0), 2)
    passengers = np.round(np.repeat(rng.uniform(1, 3, N_CUSTOMERS), DAYS) + rng.normal(0, 0.1, ids.shape[0]), 2)
    start_trips = np.repeat(rng.integers(0, 500, N_CUSTOMERS), DAYS)
    daily_trips = rng.integers(0, 4, ids.shape[0]).reshape(N_CUSTOMERS, DAYS)
    lifetime = start_trips + np.cumsum(daily_trips, axis=1).reshape(-1)

    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array(events, TIMESTAMP),
            pa.array(created, TIMESTAMP),
            pa.array(_with_nulls(balance.astype(np.float32), rng, 0.02), pa.float32()),
            pa.array(np.clip(passengers, 1, 4).astype(np.float32), pa.float32()),
            pa.array(lifetime.astype(np.int64), pa.int64()),
        ],
        schema=CUSTOMER_PROFILE_SCHEMA,
    )


def driver_daily(reference: datetime, rng: np.random.Generator) -> pa.Table:
    """Per-driver totals for each of the DAYS full days before `reference` (stamped at midnight UTC)."""
    day_us = 86_400_000_000
    midnight = reference.replace(hour=0)
    mid_us = _micros(midnight)
    driver_ids = np.arange(FIRST_DRIVER_ID, FIRST_DRIVER_ID + N_DRIVERS, dtype=np.int64)

    ids = np.repeat(driver_ids, DAYS)
    days_back = np.tile(np.arange(DAYS, 0, -1, dtype=np.int64), N_DRIVERS)
    # The day ending at midnight - (d - 1) days is stamped with its end, as a daily batch job would.
    events = mid_us - (days_back - 1) * day_us
    created = events + rng.integers(600, 7_200, size=ids.shape[0]) * 1_000_000

    hours_online = np.clip(np.repeat(rng.uniform(2, 10, N_DRIVERS), DAYS) + rng.normal(0, 1.5, ids.shape[0]), 0, 16)
    trips = np.maximum(np.round(hours_online * rng.uniform(1.5, 3.0, ids.shape[0])), 0).astype(np.int64)
    earnings = np.round(trips * rng.uniform(8, 20, ids.shape[0]), 2)

    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array(events, TIMESTAMP),
            pa.array(created, TIMESTAMP),
            pa.array(trips, pa.int64()),
            pa.array(earnings, pa.float64()),
            pa.array(hours_online.astype(np.float32), pa.float32()),
        ],
        schema=DRIVER_DAILY_SCHEMA,
    )


def write_atomically(table: pa.Table, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate(out_dir: Path = DEFAULT_OUT, reference: datetime | None = None, seed: int = DEFAULT_SEED) -> dict:
    """Write the three Parquet files into `out_dir`; return {file name: row count}."""
    if reference is not None and reference.tzinfo is None:
        raise ValueError("reference must be timezone-aware")
    reference = default_reference(reference)
    rng = np.random.default_rng(seed)
    tables = {
        "driver_stats.parquet": driver_stats(reference, rng),
        "customer_profile.parquet": customer_profile(reference, rng),
        "driver_daily.parquet": driver_daily(reference, rng),
    }
    for name, table in tables.items():
        write_atomically(table, Path(out_dir) / name)
    return {name: table.num_rows for name, table in tables.items()}


def _parse_reference(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give the reference with a timezone, e.g. 2026-01-01T00:00:00Z")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--reference", type=_parse_reference, help="newest event time (default: now, to the hour)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    reference = args.reference or default_reference()
    counts = generate(args.out, reference, args.seed)
    for name, rows in counts.items():
        print(f"wrote {args.out / name}: {rows} rows (newest event {default_reference(reference).isoformat()})")


if __name__ == "__main__":
    main()
