"""The Feast side of the compatibility test: tests/feast_peer/larder_repo/repo.yaml as a
Feast user would write it. `feast apply` turns it into a local file registry, which the
remote online store client needs for names and types; the data lives in Larder."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Bool, Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)

driver_hourly = FileSource(name="driver_hourly", path="data/drivers.parquet", timestamp_field="event_timestamp")
customer_daily = FileSource(name="customer_daily", path="data/customers.parquet", timestamp_field="event_timestamp")

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(0),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float64),
        Field(name="avg_daily_trips", dtype=Int64),
        Field(name="rating_label", dtype=String),
        Field(name="active", dtype=Bool),
        Field(name="recent_trip_ids", dtype=Array(Int64)),
    ],
    source=driver_hourly,
)

driver_slow = FeatureView(
    name="driver_slow",
    entities=[driver],
    ttl=timedelta(hours=1),
    schema=[Field(name="driver_id", dtype=Int64), Field(name="slow_score", dtype=Float64)],
    source=driver_hourly,
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(0),
    schema=[
        Field(name="customer_id", dtype=String),
        Field(name="lifetime_value", dtype=Float64),
        Field(name="segment", dtype=String),
    ],
    source=customer_daily,
)

driver_activity = FeatureService(
    name="driver_activity",
    features=[driver_hourly_stats[["conv_rate", "avg_daily_trips"]], customer_profile[["segment"]]],
)
