"""The one write path into the online store: columnar rows for a feature view,
validated and converted, then written latest-wins.

/push, /write-to-online-store and the demo seeding (`manage.py seed_online_demo`)
all go through `prepare` and `write`. A frame must carry, for the view:

- every join key of its entities (no nulls);
- the event timestamp column: the source's `timestamp_field` (no nulls);
- every feature of the view (nulls allowed: served as NULL_VALUE).

The source's `created_timestamp_column` is optional (and ignored when it holds nulls). Columns may use the source's
names: the source's `field_mapping` (source column -> feature or join key) renames
them first; giving a column under both names is an error. Other columns are ignored.
Every problem is reported at once, naming the column (and the first bad row); nothing
is written unless the whole frame converts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serving.online import OnlineRows, OnlineStore, WriteResult, get_online_store

from .convert import Unconvertible, convert_column, parse_timestamp
from .errors import InvalidRequest
from .registry_cache import FeatureViewMeta, SourceMeta

DEFAULT_TIMESTAMP_FIELD = "event_timestamp"


def frame_columns(df: Any, field: str = "df") -> tuple[dict[str, list[Any]], int]:
    """A columnar frame `{column: [values]}`, all columns the same length, and that length."""
    if not isinstance(df, Mapping) or not df:
        raise InvalidRequest(f"{field}: a non-empty object of column -> list of values is required")
    lengths: dict[str, int] = {}
    for name, values in df.items():
        if not isinstance(values, list):
            raise InvalidRequest(f"{field}.{name}: a list of values is required")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        raise InvalidRequest(f"{field}: all columns must have the same number of values, got {lengths}")
    return dict(df), next(iter(lengths.values()))


def _timestamps(values: list[Any]) -> list[Any]:
    out = []
    for row, value in enumerate(values):
        if value is None:
            raise Unconvertible(f"[{row}]: null is not allowed")
        try:
            out.append(parse_timestamp(value))
        except Unconvertible as exc:
            raise Unconvertible(f"[{row}]: {exc}") from None
    return out


def prepare(
    view: FeatureViewMeta, columns: Mapping[str, list[Any]], source: SourceMeta | None = None, field: str = "df"
) -> OnlineRows:
    """The frame as rows for `view` (named as `source` names them, default the view's
    own source); InvalidRequest naming every missing or unconvertible column."""
    source = source or view.source
    mapping = source.field_mapping
    renamed: dict[str, list[Any]] = {}
    sent_as: dict[str, str] = {}
    problems: list[str] = []
    for name, values in columns.items():
        target = mapping.get(name, name)
        if target != name and target in columns:
            problems.append(
                f"{field}: columns {name!r} and {target!r} both given (field_mapping maps {name} to {target})"
            )
            continue
        renamed[target] = values
        sent_as[target] = name
    ts_name = source.timestamp_field or DEFAULT_TIMESTAMP_FIELD
    ts_name = mapping.get(ts_name, ts_name)
    created_name = mapping.get(source.created_timestamp_column, source.created_timestamp_column)

    required = [*view.join_keys, ts_name, *view.features]
    missing = [name for name in required if name not in renamed]
    if missing:
        problems.append(
            f"{field}: missing column(s) {missing} needed by feature view {view.name} "
            f"(its join keys, the timestamp column {ts_name!r} and every feature)"
        )

    def label(name: str) -> str:
        return f"{field}.{sent_as[name]}"

    keys: dict[str, list[Any]] = {}
    for key in view.join_keys:
        if key not in renamed:
            continue
        try:
            keys[key] = convert_column(renamed[key], view.join_key_dtypes.get(key, ""), nullable=False)
        except Unconvertible as exc:
            problems.append(f"{label(key)}{exc}")
    features: dict[str, list[Any]] = {}
    for feature, dtype in view.features.items():
        if feature not in renamed:
            continue
        try:
            features[feature] = convert_column(renamed[feature], dtype)
        except Unconvertible as exc:
            problems.append(f"{label(feature)}{exc}")
    event_ts: list[Any] = []
    if ts_name in renamed:
        try:
            event_ts = _timestamps(renamed[ts_name])
        except Unconvertible as exc:
            problems.append(f"{label(ts_name)}{exc}")
    created = None
    if created_name and created_name in renamed and all(v is not None for v in renamed[created_name]):
        try:  # kept for inspection only; with nulls in it (Feast's client sends them) it is left out
            created = _timestamps(renamed[created_name])
        except Unconvertible as exc:
            problems.append(f"{label(created_name)}{exc}")
    if problems:
        raise InvalidRequest("; ".join(problems))
    return OnlineRows(entity_keys=keys, features=features, event_timestamps=event_ts, created_timestamps=created)


def write(view: FeatureViewMeta, rows: OnlineRows, store: OnlineStore | None = None) -> WriteResult:
    """Write prepared rows latest-wins (serving.online); ValueError from the store is a 422."""
    store = store or get_online_store()
    try:
        return store.write_batch(view.key, rows)
    except ValueError as exc:  # raised before anything is written (serving.online.base)
        raise InvalidRequest(f"df: {exc}") from exc
