"""What an offline engine needs to know about a view and its source, as plain frozen data.

Engines never touch the ORM: callers build specs once from the registry with
`view_spec()` / `source_spec()` and pass them down (also to Celery jobs, since specs
are plain values).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .base import OfflineInputError

SourceKind = Literal["file", "postgres"]
DEFAULT_DSN_SETTING = "LARDER_OFFLINE_DSN"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A batch source: a Parquet file or folder (`path`), or a PostgreSQL `table` or `query`
    reached through the DSN held by the setting / environment variable `dsn_setting`.

    `field_mapping` maps source column -> feature or join-key name (Feast's direction).
    `timestamp_field` and `created_timestamp_column` are source column names.
    """

    name: str
    kind: SourceKind
    path: str = ""
    table: str = ""
    query: str = ""
    dsn_setting: str = ""
    timestamp_field: str = ""
    created_timestamp_column: str = ""
    field_mapping: dict[str, str] = field(default_factory=dict, hash=False)

    def column_for(self, name: str) -> str:
        """The source column that holds feature or join key `name` (field mapping reversed)."""
        for column, mapped in self.field_mapping.items():
            if mapped == name:
                return column
        return name

    def name_for(self, column: str) -> str:
        """The feature or join-key name a source column stands for (field mapping applied)."""
        return self.field_mapping.get(column, column)


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """A feature view as an engine sees it.

    `features` are (name, dtype) in the view's order (or the requested subset);
    `ttl_seconds` 0 means unlimited lookback; `alias` (a feature service projection's
    name) replaces `name` in full feature names.
    """

    project: str
    name: str
    alias: str
    join_keys: tuple[str, ...]
    features: tuple[tuple[str, str], ...]
    ttl_seconds: int
    source: SourceSpec

    @property
    def display_name(self) -> str:
        """The prefix of full feature names: the alias when set, else the view name."""
        return self.alias or self.name

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.features)

    def dtype(self, feature: str) -> str:
        for name, dtype in self.features:
            if name == feature:
                return dtype
        raise OfflineInputError(f"feature view {self.name!r} has no feature {feature!r}")


def source_spec(data_source: Any) -> SourceSpec:
    """A SourceSpec from a catalog DataSource; a push source stands for its batch source.

    Raises OfflineInputError for sources that hold no offline rows (request sources,
    push sources without a batch source).
    """
    source = data_source
    if source.kind == "push":
        if source.batch_source_id is None:
            raise OfflineInputError(f"push source {source.name!r} has no batch source: it keeps no offline rows")
        source = source.batch_source
    if source.kind not in ("file", "postgres"):
        raise OfflineInputError(f"data source {source.name!r} is a {source.kind} source: it keeps no offline rows")
    return SourceSpec(
        name=source.name,
        kind=source.kind,
        path=source.path,
        table=source.table,
        query=source.query,
        dsn_setting=source.dsn_setting or (DEFAULT_DSN_SETTING if source.kind == "postgres" else ""),
        timestamp_field=source.timestamp_field,
        created_timestamp_column=source.created_timestamp_column,
        field_mapping=dict(source.field_mapping or {}),
    )


def view_spec(feature_view: Any, alias: str = "", features: Iterable[str] | None = None) -> ViewSpec:
    """A ViewSpec from a catalog FeatureView (reads its project, entities, fields and source).

    `features` selects and orders a subset of the view's features (all of them when None);
    an unknown name raises OfflineInputError naming the view and the feature.
    """
    fields = [(f.name, f.dtype) for f in feature_view.fields.all()]
    if features is not None:
        by_name = dict(fields)
        chosen = []
        for name in features:
            if name not in by_name:
                raise OfflineInputError(f"feature view {feature_view.name!r} has no feature {name!r}")
            chosen.append((name, by_name[name]))
        fields = chosen
    join_keys: list[str] = []
    for entity in feature_view.entities.all().order_by("name"):
        for key in entity.join_keys:
            if key not in join_keys:
                join_keys.append(key)
    return ViewSpec(
        project=feature_view.project.name,
        name=feature_view.name,
        alias=alias,
        join_keys=tuple(join_keys),
        features=tuple(fields),
        ttl_seconds=int(feature_view.ttl.total_seconds()),
        source=source_spec(feature_view.source),
    )


@dataclass(frozen=True, slots=True)
class JoinPlan:
    """One view's part of a point-in-time join: the requested features (in request order)
    and the output column name of each (`feature` or `display_name__feature`)."""

    view: ViewSpec
    features: tuple[str, ...]
    output_names: tuple[str, ...]
