"""Registry objects as Feast's REST registry prints them: protobuf JSON in camelCase,
`{"spec": {...}, "meta": {...}}` per object, data sources flat. Names are Feast's;
the few Larder-only keys are listed in docs/api.md.

These serializers only read (writes take the YAML-shaped spec of docs/feature-repo.md).
The querysets feeding them carry the select_related/prefetch_related named in
catalog.api.specs; without those a list turns into N+1 queries.
"""

import base64
import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from access.models import Permission
from catalog.models import (
    DataSource,
    FeatureView,
    FeatureViewProjection,
    Field,
    OnDemandFeatureView,
    SavedDataset,
)
from catalog.models.types import value_type_name

from .fields import ComputedField, DurationField, TimestampField, ValueTypeField, tags_field

SOURCE_TYPES = {"file": "BATCH_FILE", "postgres": "CUSTOM_SOURCE", "push": "PUSH_SOURCE", "request": "REQUEST_SOURCE"}
POSTGRES_SOURCE_CLASS = "feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source.PostgreSQLSource"
PARQUET_FORMAT = {"parquetFormat": {}}


def custom_configuration(name: str | None, query: str, table: str) -> str:
    """Feast's PostgreSQL custom_options.configuration: JSON bytes, base64 in protobuf JSON."""
    raw = json.dumps({"name": name, "query": query or None, "table": table or None}).encode()
    return base64.b64encode(raw).decode()


class ObjectMetaSerializer(serializers.Serializer):
    createdTimestamp = TimestampField(source="created_at")
    lastUpdatedTimestamp = TimestampField(source="updated_at")


class FeatureSpecSerializer(serializers.Serializer):
    """Feast's FeatureSpecV2: one feature (or entity column) and its value type."""

    name = serializers.CharField()
    valueType = ValueTypeField(source="dtype")
    description = serializers.CharField()
    tags = tags_field()


def join_keys_of(view: FeatureView) -> set[str]:
    return {key for entity in view.entities.all() for key in entity.join_keys}


def feature_fields(view: FeatureView) -> list[Field]:
    """A view's features: its fields minus entity columns (Feast keeps those apart)."""
    keys = join_keys_of(view)
    return [f for f in view.fields.all() if f.name not in keys]


# ---------------------------------------------------------------- projects, entities


class ProjectSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    tags = tags_field()
    owner = serializers.CharField()


class ProjectSerializer(serializers.Serializer):
    spec = ProjectSpecSerializer(source="*")
    meta = ObjectMetaSerializer(source="*")


class EntitySpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    joinKey = serializers.SerializerMethodField()
    joinKeys = serializers.ListField(child=serializers.CharField(), source="join_keys")
    valueType = ValueTypeField(source="value_type")
    description = serializers.CharField()
    tags = tags_field()
    owner = serializers.CharField()
    project = serializers.CharField(source="project.name")

    def get_joinKey(self, obj: Any) -> str:
        return obj.join_keys[0] if obj.join_keys else obj.name


class EntitySerializer(serializers.Serializer):
    spec = EntitySpecSerializer(source="*")
    meta = ObjectMetaSerializer(source="*")
    project = serializers.CharField(source="project.name")


# ---------------------------------------------------------------- data sources


class FileOptionsSerializer(serializers.Serializer):
    uri = serializers.CharField(source="path")
    fileFormat = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_fileFormat(self, obj: DataSource) -> dict:
        return PARQUET_FORMAT


class CustomOptionsSerializer(serializers.Serializer):
    configuration = serializers.SerializerMethodField(help_text="base64 of Feast's JSON {name, query, table}")

    def get_configuration(self, obj: DataSource) -> str:
        return custom_configuration(obj.name, obj.query, obj.table)


class PostgresOptionsSerializer(serializers.Serializer):
    """Larder-only: the PostgreSQL settings in clear (the DSN itself is never shown)."""

    table = serializers.CharField()
    query = serializers.CharField()
    dsnSetting = serializers.CharField(source="dsn_setting")


class RequestDataOptionsSerializer(serializers.Serializer):
    schema = serializers.SerializerMethodField()

    @extend_schema_field(FeatureSpecSerializer(many=True))
    def get_schema(self, obj: DataSource) -> list[dict]:
        return [
            {"name": item.get("name", ""), "valueType": value_type_name(item.get("dtype", "")), "description": ""}
            for item in obj.schema or []
        ]


class DataSourceBaseSerializer(serializers.Serializer):
    """Flat, like Feast's DataSource proto; only the options of the source's kind appear.
    A push source without its own timestamp columns shows its batch source's (as Feast)."""

    KIND_KEYS = {
        "file": {"fileOptions"},
        "postgres": {"dataSourceClassType", "customOptions", "postgresOptions"},
        "push": {"batchSource"},
        "request": {"requestDataOptions"},
    }
    OPTIONAL_KEYS = set().union(*KIND_KEYS.values())

    name = serializers.CharField()
    project = serializers.CharField(source="project.name")
    type = serializers.SerializerMethodField()
    timestampField = serializers.SerializerMethodField()
    createdTimestampColumn = serializers.SerializerMethodField()
    fieldMapping = serializers.SerializerMethodField()
    description = serializers.CharField()
    tags = tags_field()
    owner = serializers.CharField()
    dataSourceClassType = ComputedField("get_class_type", OpenApiTypes.STR)
    fileOptions = FileOptionsSerializer(source="*", required=False)
    customOptions = CustomOptionsSerializer(source="*", required=False)
    postgresOptions = PostgresOptionsSerializer(source="*", required=False)
    requestDataOptions = RequestDataOptionsSerializer(source="*", required=False)
    meta = ObjectMetaSerializer(source="*")

    def to_representation(self, instance: DataSource) -> dict:
        data = super().to_representation(instance)
        keep = self.KIND_KEYS.get(instance.kind, set())
        return {k: v for k, v in data.items() if k not in self.OPTIONAL_KEYS or (k in keep and v is not None)}

    @staticmethod
    def _inherited(obj: DataSource, attr: str) -> Any:
        value = getattr(obj, attr)
        if not value and obj.kind == DataSource.Kind.PUSH and obj.batch_source is not None:
            return getattr(obj.batch_source, attr)
        return value

    @extend_schema_field({"type": "string", "description": "Feast SourceType: " + ", ".join(SOURCE_TYPES.values())})
    def get_type(self, obj: DataSource) -> str:
        return SOURCE_TYPES.get(obj.kind, "INVALID")

    def get_timestampField(self, obj: DataSource) -> str:
        return self._inherited(obj, "timestamp_field")

    def get_createdTimestampColumn(self, obj: DataSource) -> str:
        return self._inherited(obj, "created_timestamp_column")

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_fieldMapping(self, obj: DataSource) -> dict:
        return self._inherited(obj, "field_mapping") or {}

    def get_class_type(self, obj: DataSource) -> str | None:
        return POSTGRES_SOURCE_CLASS if obj.kind == DataSource.Kind.POSTGRES else None


class BatchSourceSerializer(DataSourceBaseSerializer):
    """A data source nested in another object (a batch source has no batch source)."""


class DataSourceSerializer(DataSourceBaseSerializer):
    batchSource = BatchSourceSerializer(source="batch_source", required=False)


# ---------------------------------------------------------------- feature views


class MaterializationIntervalSerializer(serializers.Serializer):
    startTime = TimestampField(source="start")
    endTime = TimestampField(source="end")


class FeatureViewMetaSerializer(ObjectMetaSerializer):
    materializationIntervals = MaterializationIntervalSerializer(source="materialization_intervals", many=True)


class FeatureViewSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField(source="project.name")
    entities = serializers.SerializerMethodField()
    features = serializers.SerializerMethodField()
    entityColumns = serializers.SerializerMethodField()
    ttl = DurationField()
    batchSource = BatchSourceSerializer(source="batch_source", required=False, allow_null=True)
    streamSource = ComputedField("get_stream_source", DataSourceSerializer)
    online = serializers.BooleanField()
    offline = serializers.BooleanField()
    description = serializers.CharField()
    tags = tags_field()
    owner = serializers.CharField()

    def to_representation(self, instance: FeatureView) -> dict:
        data = super().to_representation(instance)
        return {k: v for k, v in data.items() if v is not None or k not in {"batchSource", "streamSource"}}

    def get_entities(self, obj: FeatureView) -> list[str]:
        return [e.name for e in obj.entities.all()]

    @extend_schema_field(FeatureSpecSerializer(many=True))
    def get_features(self, obj: FeatureView) -> list[dict]:
        return FeatureSpecSerializer(feature_fields(obj), many=True).data

    @extend_schema_field(FeatureSpecSerializer(many=True))
    def get_entityColumns(self, obj: FeatureView) -> list[dict]:
        dtypes = {f.name: f.dtype for f in obj.fields.all()}
        return [
            {"name": key, "valueType": value_type_name(dtypes.get(key) or entity.value_type), "description": ""}
            for entity in obj.entities.all()
            for key in entity.join_keys
        ]

    def get_stream_source(self, obj: FeatureView) -> dict | None:
        return DataSourceSerializer(obj.source).data if obj.source.kind == DataSource.Kind.PUSH else None


class FeatureViewSerializer(serializers.Serializer):
    spec = FeatureViewSpecSerializer(source="*")
    meta = FeatureViewMetaSerializer(source="*")
    project = serializers.CharField(source="project.name")


# ---------------------------------------------------------------- on-demand views


class FeatureViewProjectionRefSerializer(serializers.Serializer):
    featureViewName = serializers.CharField()
    featureColumns = FeatureSpecSerializer(many=True)


class OnDemandSourceSerializer(serializers.Serializer):
    """One entry of an on-demand view's `sources` map: a projection of a feature view,
    or a request source."""

    featureViewProjection = FeatureViewProjectionRefSerializer(required=False)
    requestDataSource = DataSourceSerializer(required=False)


class FeatureTransformationSerializer(serializers.Serializer):
    mode = serializers.CharField(help_text="expression | python")
    expressions = serializers.DictField(child=serializers.CharField(), required=False)
    function = serializers.CharField(required=False, help_text="dotted path of a function importable on the server")


class OnDemandFeatureViewSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField(source="project.name")
    features = FeatureSpecSerializer(source="fields", many=True)
    sources = serializers.SerializerMethodField()
    featureTransformation = serializers.SerializerMethodField()
    mode = serializers.CharField()
    description = serializers.CharField()
    tags = tags_field()
    owner = serializers.CharField()

    @extend_schema_field(serializers.DictField(child=OnDemandSourceSerializer()))
    def get_sources(self, obj: OnDemandFeatureView) -> dict[str, dict]:
        sources: dict[str, dict] = {}
        for view in obj.sources.all():
            columns = FeatureSpecSerializer(feature_fields(view), many=True).data
            sources[view.name] = {"featureViewProjection": {"featureViewName": view.name, "featureColumns": columns}}
        for source in obj.request_sources.all():
            sources[source.name] = {"requestDataSource": DataSourceSerializer(source).data}
        return sources

    @extend_schema_field(FeatureTransformationSerializer)
    def get_featureTransformation(self, obj: OnDemandFeatureView) -> dict:
        if obj.mode == OnDemandFeatureView.Mode.PYTHON:
            return {"mode": obj.mode, "function": obj.function}
        return {"mode": obj.mode, "expressions": obj.expressions or {}}


class OnDemandFeatureViewSerializer(serializers.Serializer):
    spec = OnDemandFeatureViewSpecSerializer(source="*")
    meta = ObjectMetaSerializer(source="*")
    project = serializers.CharField(source="project.name")


# ---------------------------------------------------------------- feature services


class FeatureViewProjectionSerializer(serializers.Serializer):
    featureViewName = serializers.SerializerMethodField()
    featureViewNameAlias = serializers.CharField(source="alias")
    featureColumns = serializers.SerializerMethodField()

    def get_featureViewName(self, obj: FeatureViewProjection) -> str:
        return obj.view.name

    @extend_schema_field(FeatureSpecSerializer(many=True))
    def get_featureColumns(self, obj: FeatureViewProjection) -> list[dict]:
        view = obj.view
        fields = feature_fields(view) if isinstance(view, FeatureView) else list(view.fields.all())
        if obj.features:
            by_name = {f.name: f for f in fields}
            fields = [by_name[name] for name in obj.features if name in by_name]
        return FeatureSpecSerializer(fields, many=True).data


class FeatureServiceSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField(source="project.name")
    features = FeatureViewProjectionSerializer(source="projections", many=True)
    tags = tags_field()
    description = serializers.CharField()
    owner = serializers.CharField()


class FeatureServiceSerializer(serializers.Serializer):
    spec = FeatureServiceSpecSerializer(source="*")
    meta = ObjectMetaSerializer(source="*")
    project = serializers.CharField(source="project.name")


# ---------------------------------------------------------------- saved datasets


class SavedDatasetStorageSerializer(serializers.Serializer):
    fileStorage = FileOptionsSerializer(required=False, help_text="a Parquet file or folder")
    customStorage = CustomOptionsSerializer(required=False, help_text="a PostgreSQL table")


class SavedDatasetSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField(source="project.name")
    features = serializers.ListField(child=serializers.CharField())
    joinKeys = serializers.ListField(child=serializers.CharField(), source="join_keys")
    fullFeatureNames = serializers.BooleanField(source="full_feature_names")
    storage = serializers.SerializerMethodField()
    featureServiceName = serializers.SerializerMethodField()
    tags = tags_field()
    description = serializers.CharField()

    @extend_schema_field(SavedDatasetStorageSerializer)
    def get_storage(self, obj: SavedDataset) -> dict:
        location = obj.storage or ""
        if "/" in location or "\\" in location or location.endswith(".parquet"):
            return {"fileStorage": {"uri": location, "fileFormat": PARQUET_FORMAT}}
        return {"customStorage": {"configuration": custom_configuration(None, "", location)}}

    def get_featureServiceName(self, obj: SavedDataset) -> str:
        return obj.feature_service.name if obj.feature_service_id else ""


class SavedDatasetMetaSerializer(ObjectMetaSerializer):
    minEventTimestamp = TimestampField(source="min_event_timestamp", allow_null=True)
    maxEventTimestamp = TimestampField(source="max_event_timestamp", allow_null=True)


class SavedDatasetSerializer(serializers.Serializer):
    spec = SavedDatasetSpecSerializer(source="*")
    meta = SavedDatasetMetaSerializer(source="*")
    project = serializers.CharField(source="project.name")


# ---------------------------------------------------------------- permissions


class RoleBasedPolicySerializer(serializers.Serializer):
    roles = serializers.ListField(child=serializers.CharField())


class GroupBasedPolicySerializer(serializers.Serializer):
    groups = serializers.ListField(child=serializers.CharField())


class PolicySerializer(serializers.Serializer):
    """Feast's Policy oneof; a Larder permission may hold both roles and groups (either grants)."""

    roleBasedPolicy = RoleBasedPolicySerializer(required=False)
    groupBasedPolicy = GroupBasedPolicySerializer(required=False)


class PermissionSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField(source="project.name")
    types = serializers.SerializerMethodField(help_text="empty: every type")
    namePatterns = serializers.ListField(child=serializers.CharField(), source="name_patterns")
    requiredTags = serializers.DictField(child=serializers.CharField(), source="required_tags")
    actions = serializers.ListField(child=serializers.CharField())
    policy = serializers.SerializerMethodField()
    tags = tags_field()

    def get_types(self, obj: Permission) -> list[str]:
        return [str(t).upper() for t in obj.types]

    @extend_schema_field(PolicySerializer)
    def get_policy(self, obj: Permission) -> dict:
        policy: dict[str, dict] = {}
        if obj.roles:
            policy["roleBasedPolicy"] = {"roles": list(obj.roles)}
        if obj.groups:
            policy["groupBasedPolicy"] = {"groups": list(obj.groups)}
        return policy


class PermissionSerializer(serializers.Serializer):
    spec = PermissionSpecSerializer(source="*")
    meta = ObjectMetaSerializer(source="*")
    project = serializers.CharField(source="project.name")


# ---------------------------------------------------------------- features


class FeatureSerializer(serializers.Serializer):
    """One item of /features: Feast's shape plus `project` and `tags`."""

    name = serializers.CharField()
    featureView = serializers.SerializerMethodField()
    type = serializers.CharField(source="dtype", help_text="Feast type name, e.g. Float32, Array(String)")
    description = serializers.CharField()
    kind = serializers.SerializerMethodField()
    project = serializers.SerializerMethodField()
    tags = tags_field()

    def get_featureView(self, obj: Field) -> str:
        return obj.view.name

    def get_kind(self, obj: Field) -> str:
        return "feature"

    def get_project(self, obj: Field) -> str:
        return obj.view.project.name


class WriteResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField()
    status = serializers.CharField(help_text="applied | deleted")


class PaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    limit = serializers.IntegerField()
    totalCount = serializers.IntegerField()
    totalPages = serializers.IntegerField()
    hasNext = serializers.BooleanField()
    hasPrevious = serializers.BooleanField()


class ErrorSerializer(serializers.Serializer):
    status_code = serializers.IntegerField()
    detail = serializers.JSONField(help_text="a message, or for 422 a list of {loc, msg, type}")
    error_type = serializers.CharField()


class VersionSerializer(serializers.Serializer):
    version = serializers.CharField()
