"""The point-in-time semantics of issue 5 (feast-reference §2.2) in plain Python, for tests.

Deliberately naive (a scan per entity row) so it is obviously right; the engines are
checked against it on random data (tests/unit/test_offline_properties.py and
tests/integration/test_offline_postgres.py).

Ties that the semantics leave open (same ts and same created, or same ts and no created
column) are returned as a set of acceptable answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from serving.offline.specs import ViewSpec


def utc(value: datetime | None) -> datetime | None:
    """Naive datetimes are UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rank(row: Mapping[str, Any], view: ViewSpec) -> tuple:
    created_col = view.source.created_timestamp_column
    created = utc(row.get(created_col)) if created_col else None
    # nulls last in "created DESC": a null created ranks below every real one
    return (utc(row[view.source.timestamp_field]), created is not None, created)


def _values(row: Mapping[str, Any] | None, view: ViewSpec, features: Sequence[str]) -> tuple:
    if row is None:
        return tuple(None for _ in features)
    return tuple(row[view.source.column_for(f)] for f in features)


def best_rows(candidates: list[Mapping[str, Any]], view: ViewSpec) -> list[Mapping[str, Any]]:
    """The candidates that may win: greatest ts, then greatest created (ties kept)."""
    if not candidates:
        return []
    top = max(_rank(r, view) for r in candidates)
    return [r for r in candidates if _rank(r, view) == top]


def point_in_time(
    entity_rows: Sequence[Mapping[str, Any]],
    timestamp_column: str,
    view: ViewSpec,
    features: Sequence[str],
    source_rows: Sequence[Mapping[str, Any]],
) -> list[set[tuple]]:
    """For each entity row, the set of acceptable feature tuples (in `features` order)."""
    src = view.source
    ttl = timedelta(seconds=view.ttl_seconds)
    out = []
    for entity in entity_rows:
        t = utc(entity[timestamp_column])
        keys = [entity[k] for k in view.join_keys]
        candidates = []
        for row in source_rows:
            if any(v is None for v in keys) or [row[src.column_for(k)] for k in view.join_keys] != keys:
                continue
            ts = utc(row[src.timestamp_field])
            if ts is None or ts > t:
                continue
            if view.ttl_seconds and ts < t - ttl:
                continue
            candidates.append(row)
        best = best_rows(candidates, view)
        out.append({_values(r, view, features) for r in best} or {_values(None, view, features)})
    return out


def pull_latest(view: ViewSpec, source_rows: Sequence[Mapping[str, Any]], start: datetime, end: datetime) -> dict:
    """Key tuple -> set of acceptable (features..., event_timestamp) for rows in [start, end]."""
    src = view.source
    groups: dict[tuple, list] = {}
    for row in source_rows:
        ts = utc(row[src.timestamp_field])
        if ts is not None and utc(start) <= ts <= utc(end):
            groups.setdefault(tuple(row[src.column_for(k)] for k in view.join_keys), []).append(row)
    return {
        key: {(*_values(r, view, view.feature_names), utc(r[src.timestamp_field])) for r in best_rows(rows, view)}
        for key, rows in groups.items()
    }


def pull_all(view: ViewSpec, source_rows: Sequence[Mapping[str, Any]], start: datetime, end: datetime) -> list:
    """Sorted (keys..., features..., event_timestamp) of every row in [start, end]."""
    src = view.source
    out = []
    for row in source_rows:
        ts = utc(row[src.timestamp_field])
        if ts is not None and utc(start) <= ts <= utc(end):
            keys = tuple(row[src.column_for(k)] for k in view.join_keys)
            out.append((*keys, *_values(row, view, view.feature_names), ts))
    return sorted(out, key=repr)


# -- random scenarios (hypothesis) shared by the engine property tests -------------------

BASE = datetime(2024, 3, 1, tzinfo=UTC)


def at(minute: int, aware: bool = True) -> datetime:
    value = BASE + timedelta(minutes=minute)
    return value if aware else value.replace(tzinfo=None)


def scenarios():
    """A hypothesis strategy of dicts describing two views over two sources and an entity
    table: few keys and few distinct minutes so ties on ts, rows exactly at T and exactly
    at T - ttl, missing entities and duplicate entity rows are all common."""
    from hypothesis import strategies as st

    minute = st.integers(0, 12)

    @st.composite
    def build(draw):
        mapped = draw(st.booleans())
        source_aware = draw(st.booleans())
        with_created = draw(st.booleans())
        users = draw(
            st.lists(
                st.tuples(st.integers(0, 3), minute, st.one_of(st.none(), st.integers(0, 4))), min_size=0, max_size=25
            )
        )
        merchants = draw(st.lists(st.tuples(st.integers(0, 2), minute), min_size=0, max_size=12))
        entity = draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), minute), min_size=1, max_size=20))
        key, value = ("uid", "src_v") if mapped else ("user_id", "v")
        rows_a = []
        for i, (user, m, created) in enumerate(users):
            row = {key: user, "ts": at(m, source_aware), value: i, "f": i / 4}
            if with_created:
                row["created"] = None if created is None else at(m + created, source_aware)
            rows_a.append(row)
        rows_b = [{"merchant_id": mid, "ts": at(m, source_aware), "w": f"w{i}"} for i, (mid, m) in enumerate(merchants)]
        entity_aware = draw(st.booleans())
        return {
            "mapped": mapped,
            "source_aware": source_aware,
            "with_created": with_created,
            "rows_a": rows_a,
            "rows_b": rows_b,
            "ttl_a": draw(st.sampled_from([0, 60, 180, 300])),
            "ttl_b": draw(st.sampled_from([0, 120])),
            "entity": {
                "user_id": [u for u, _, _ in entity],
                "merchant_id": [mid for _, mid, _ in entity],
                "event_timestamp": [at(m, entity_aware) for _, _, m in entity],
                "label": list(range(len(entity))),
            },
            "full_feature_names": draw(st.booleans()),
        }

    return build()


def scenario_views(scenario: dict, make_source) -> list[tuple[ViewSpec, list[str]]]:
    """The scenario's two views; `make_source(name, rows, columns, **spec fields)` stores the
    rows where an engine reads them and returns the SourceSpec. `columns` are
    (name, kind) with kind in int, float, str, ts."""
    mapped = scenario["mapped"]
    key, value = ("uid", "src_v") if mapped else ("user_id", "v")
    columns_a = [(key, "int"), ("ts", "ts"), (value, "int"), ("f", "float")]
    if scenario["with_created"]:
        columns_a.append(("created", "ts"))
    source_a = make_source(
        "users",
        scenario["rows_a"],
        columns_a,
        timestamp_field="ts",
        created_timestamp_column="created" if scenario["with_created"] else "",
        field_mapping={"uid": "user_id", "src_v": "v"} if mapped else {},
    )
    source_b = make_source(
        "merchants", scenario["rows_b"], [("merchant_id", "int"), ("ts", "ts"), ("w", "str")], timestamp_field="ts"
    )
    view_a = ViewSpec(
        "p", "users_fv", "", ("user_id",), (("v", "Int64"), ("f", "Float64")), scenario["ttl_a"], source_a
    )
    view_b = ViewSpec("p", "merchants_fv", "", ("merchant_id",), (("w", "String"),), scenario["ttl_b"], source_b)
    return [(view_a, ["f", "v"]), (view_b, ["w"])]


def check_against_reference(result, scenario: dict, views: Sequence[tuple[ViewSpec, list[str]]]) -> None:
    """Assert an engine's result is one of the answers the reference allows, row by row."""
    entity = scenario["entity"]
    n = len(entity["label"])
    assert result.num_rows == n
    assert result.column_names[:4] == ["user_id", "merchant_id", "event_timestamp", "label"]
    assert result.column("label").to_pylist() == entity["label"]
    assert result.column("user_id").to_pylist() == entity["user_id"]
    assert [utc(t) for t in result.column("event_timestamp").to_pylist()] == [utc(t) for t in entity["event_timestamp"]]
    rows = [dict(zip(entity, values, strict=True)) for values in zip(*entity.values(), strict=True)]
    sources = {"users_fv": scenario["rows_a"], "merchants_fv": scenario["rows_b"]}
    for view, features in views:
        names = [f"{view.display_name}__{f}" if scenario["full_feature_names"] else f for f in features]
        expected = point_in_time(rows, "event_timestamp", view, features, sources[view.name])
        got = list(zip(*(result.column(name).to_pylist() for name in names), strict=True))
        for i, (value, allowed) in enumerate(zip(got, expected, strict=True)):
            assert value in allowed, f"{view.name} row {i} ({rows[i]}): got {value}, allowed {allowed}"
