"""The pieces both online stores share: value codec, entity keys, the type-name registry."""

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from serving.online import OnlineStore, ViewKey, get_online_store
from serving.online.codec import (
    decode_row,
    decode_rows,
    decode_value,
    encode_column,
    encode_row,
    encode_value,
    from_micros,
    int_text_column,
    micros_column,
    to_micros,
)
from serving.online.keys import encode_entity_key, encode_entity_keys, latest_per_entity
from serving.online.redis import RedisOnlineStore
from serving.online.registry import online_store_class
from serving.online.sql import SqlOnlineStore

scalars = (
    st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.booleans()
    | st.none()
    | st.datetimes(timezones=st.just(UTC))
)
values = scalars | st.lists(scalars, max_size=5)


@given(values)
def test_any_feature_value_round_trips(value):
    assert decode_value(encode_value(value)) == value
    assert type(decode_value(encode_value(value))) is type(value)


def test_non_finite_floats_survive_where_plain_json_would_write_null():
    assert decode_value(encode_value(math.inf)) == math.inf
    assert math.isnan(decode_value(encode_value(math.nan)))
    stored = decode_row(encode_row({"a": [1.0, -math.inf], "b": 2}), ["a", "b", "c"])
    assert stored == {"a": [1.0, -math.inf], "b": 2}


def test_encoding_is_compact_json_with_tags():
    assert encode_value(0.1) == b"0.1"
    assert encode_value(b"\x00") == b'{"b":"AA=="}'
    assert encode_value(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == b'{"t":1000000}'
    assert encode_row({"x": None, "y": [True]}) == b'{"x":null,"y":[true]}'


def test_numpy_values_are_stored_as_python_values():
    np = pytest.importorskip("numpy")
    assert decode_value(encode_value(np.float32(0.1))) == float(np.float32(0.1))
    assert decode_value(encode_value(np.array([1, 2], dtype=np.int64))) == [1, 2]


@pytest.mark.parametrize(
    ("value", "message"),
    [(2**64, "64-bit"), (datetime(2025, 1, 1), "naive"), ({"a": 1}, "not a feature value type")],  # noqa: DTZ001
)
def test_values_that_cannot_be_stored_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        encode_value(value)


NUMERIC_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64()]
NUMERIC_TYPES += [pa.float32(), pa.float64(), pa.bool_()]


def _random_column(dtype: pa.DataType, rng: np.random.Generator, n: int) -> pa.Array:
    if pa.types.is_boolean(dtype):
        values = rng.integers(0, 2, n).astype(bool)
    elif pa.types.is_floating(dtype):
        width = np.uint32 if dtype == pa.float32() else np.uint64  # every bit pattern: NaN, inf, subnormal
        values = rng.integers(0, np.iinfo(width).max, n, dtype=width, endpoint=True).view(dtype.to_pandas_dtype())
        values[: min(n, 4)] = [0.0, -0.0, np.inf, -np.inf][: min(n, 4)]
    else:
        info = np.iinfo(dtype.to_pandas_dtype())
        values = rng.integers(info.min, info.max, n, dtype=dtype.to_pandas_dtype(), endpoint=True)
    return pa.array(values, dtype, mask=rng.random(n) < 0.1)


@pytest.mark.parametrize("dtype", NUMERIC_TYPES, ids=str)
def test_encode_column_is_encode_value_of_every_value(dtype):
    """The vectorised path writes the bytes of the per-value path (float32 widened to the
    Python float to_pylist gives, nulls as null, NaN and infinities tagged)."""
    rng = np.random.default_rng(len(str(dtype)))
    for n in (0, 1, 7, 5000):
        column = _random_column(dtype, rng, n)
        expected = [encode_value(v) for v in column.to_pylist()]
        assert encode_column(column) == expected
        assert encode_column(pa.chunked_array([column.slice(0, n // 2), column.slice(n // 2)], dtype)) == expected


def test_encode_column_other_types_go_value_by_value():
    when = datetime(2024, 2, 29, 12, tzinfo=UTC)
    naive = pa.array([when.replace(tzinfo=None), None], pa.timestamp("us"))
    assert encode_column(naive) == [encode_value(when), b"null"]
    column = pa.array([["a", None], [], None], pa.list_(pa.string()))
    assert encode_column(column) == [encode_value(["a", None]), b"[]", b"null"]
    with pytest.raises(ValueError, match="feature value type"):
        encode_column(pa.array([1, 2], pa.duration("s")))


def test_micros_and_int_text_columns():
    times = [datetime(1969, 7, 20, 20, 17, tzinfo=UTC), datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)]
    assert micros_column(pa.array(times, pa.timestamp("us", tz="UTC"))) == [to_micros(t) for t in times]
    naive = pa.array([t.replace(tzinfo=None) for t in times], pa.timestamp("ns"))
    assert micros_column(naive) == [to_micros(t) for t in times]
    with pytest.raises(ValueError, match="null"):
        micros_column(pa.array([times[0], None]))
    ids = [-(2**63), -1, 0, 2**63 - 1]
    assert int_text_column(pa.array(ids)) == [str(i).encode() for i in ids]
    assert int_text_column(pa.array([2**64 - 1], pa.uint64())) == [b"18446744073709551615"]
    with pytest.raises(ValueError, match="entity key"):
        int_text_column(pa.array([1, None]))


@given(st.lists(st.lists(values, min_size=3, max_size=3), max_size=6))
def test_decode_rows_is_decode_value_of_every_value(rows):
    stored = [[str(i * 7 - 3).encode(), *(encode_value(v) for v in row)] for i, row in enumerate(rows)]
    decoded = decode_rows(stored)
    assert decoded == [[int(row[0]), *(decode_value(v) for v in row[1:])] for row in stored]


def test_decode_rows_refuses_bytes_it_did_not_write():
    """A stored value holding two JSON values (or a bad time) is not split across
    columns: the caller then decodes value by value, which raises."""
    assert decode_rows([[b"1", b"1,2", b"3"], [b"2", b"4", b"5"]]) is None
    assert decode_rows([[b"1", b"1,2"], [b"2", b"4"], [b"3", b"]"]]) is None
    assert decode_rows([[b"1.5", b"1"]]) is None
    assert decode_rows([[b"1", b"not json"]]) is None
    assert decode_rows([]) == []


def test_timestamps_are_exact_epoch_microseconds():
    ts = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)
    assert from_micros(to_micros(ts)) == ts
    assert to_micros(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 0
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1


def test_entity_keys_are_canonical():
    assert encode_entity_key(("driver_id",), {"driver_id": 1001}) == "driver_id=1001"
    compound = ("customer_id", "driver_id")
    assert encode_entity_key(compound, {"driver_id": 1, "customer_id": "c"}) == 'customer_id="c",driver_id=1'
    assert encode_entity_key(("k",), {"k": 'a",k=b'}) == 'k="a\\",k=b"'
    assert encode_entity_key(("k",), {"k": b"\x01"}) == "k=0x01"
    assert encode_entity_key(("k",), {"k": datetime(1970, 1, 1, tzinfo=UTC)}) == "k=@0"
    assert encode_entity_key((), {}) == ""
    columns = {"driver_id": [1, 2], "customer_id": ["a", "b"]}
    assert encode_entity_keys(compound, columns) == ['customer_id="a",driver_id=1', 'customer_id="b",driver_id=2']


@pytest.mark.parametrize("bad", [1.5, True, None, [1]])
def test_floats_bools_nulls_and_lists_are_not_entity_keys(bad):
    with pytest.raises(ValueError, match="entity key"):
        encode_entity_key(("k",), {"k": bad})


def test_latest_per_entity_keeps_the_newest_and_the_later_of_ties():
    keys = ["b", "a", "b", "a", "c"]
    assert latest_per_entity(keys, [5, 1, 5, 2, 0]) == [2, 3, 4]
    assert latest_per_entity(keys, [5, 1, 5, 2, 0], by_key=True) == [3, 2, 4]


def test_type_names_map_to_store_classes():
    assert online_store_class("sql") is SqlOnlineStore
    assert online_store_class("redis") is RedisOnlineStore
    assert online_store_class("serving.online.sql.SqlOnlineStore") is SqlOnlineStore


def test_unknown_or_wrong_store_is_improperly_configured():
    with pytest.raises(ImproperlyConfigured, match="use one of redis, sql"):
        online_store_class("memcached")
    with pytest.raises(ImproperlyConfigured, match="not an OnlineStore"):
        online_store_class("serving.online.codec.encode_value")
    with pytest.raises(ImproperlyConfigured, match="cannot import"):
        online_store_class("serving.online.nope.Store")


def test_get_online_store_is_built_once_and_follows_settings():
    with override_settings(LARDER_ONLINE_STORE="sql"):
        store = get_online_store()
        assert isinstance(store, SqlOnlineStore)
        assert get_online_store() is store
    with override_settings(LARDER_ONLINE_STORE="redis", REDIS_URL="redis://127.0.0.1:1/3", LARDER_REDIS_CLUSTER=False):
        store = get_online_store()
        assert isinstance(store, RedisOnlineStore)
        assert store.describe() == "redis at 127.0.0.1:1/3"
    with override_settings(LARDER_ONLINE_STORE="redis", REDIS_URL=""), pytest.raises(ImproperlyConfigured):
        get_online_store()
    with override_settings(LARDER_ONLINE_STORE="bogus"), pytest.raises(ImproperlyConfigured, match="bogus"):
        get_online_store()
    assert isinstance(get_online_store(), OnlineStore)


def test_view_key_from_a_feature_view_has_its_sorted_join_keys(db):
    from catalog.models import DataSource, Entity, Project
    from tests.unit.registry_data import make_view

    project = Project.objects.create(name="shop")
    source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet", timestamp_field="ts")
    driver = Entity.objects.create(project=project, name="driver", join_keys=["driver_id"])
    customer = Entity.objects.create(project=project, name="customer", join_keys=["customer_id"])
    view = make_view(project, "trips", source, [driver, customer])
    assert ViewKey.for_feature_view(view) == ViewKey("shop", "trips", ("customer_id", "driver_id"))
    assert ViewKey.for_feature_view(make_view(project, "global", source)).join_keys == ()
