"""The body of POST /api/v1/historical-features, read and checked field by field.

Two shapes (docs/api.md, "Historical retrieval"):

- JSON: `{"project", "features": ["view:feature", ...] | "feature_service": "name",
  "full_feature_names": false, "entities": {column: [values]} | "entity_sql": "SELECT ...",
  "format": "parquet", "save_as": {"name", "description", "tags"}, "async": false}`;
- multipart/form-data: the same fields as form fields (`features` repeated or a JSON
  list, `save_as` as JSON text) plus an uploaded Parquet or CSV file `entity_file`.

Every problem is a 422 naming the field (access.api_errors.RequestValidationError).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from rest_framework.request import Request

from access.api_errors import RequestValidationError, error_item
from catalog.repo.fields import NAME_RE
from serving.offline.base import OfflineInputError

from .entity_sql import check_select
from .formats import format_from_request

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}
ENTITY_SOURCES = ("entities", "entity_file", "entity_sql")


@dataclass
class SaveAs:
    """`save_as`: register the result as a SavedDataset of this name."""

    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class HistoricalRequest:
    """A checked request. Exactly one of `features` / `feature_service`, and exactly one
    entity source: `entities` (JSON columns), `entity_file` (an upload) or `entity_sql`."""

    project: str
    features: list[str] | None
    feature_service: str | None
    full_feature_names: bool
    format: str
    run_async: bool
    entities: dict[str, list[Any]] | None = None
    entity_file: UploadedFile | None = None
    entity_sql: str | None = None
    save_as: SaveAs | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the request as received (jobs, saved datasets)

    @property
    def entity_source(self) -> str:
        if self.entities is not None:
            return "entities"
        return "entity_file" if self.entity_file is not None else "entity_sql"


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise RequestValidationError.invalid("body", name, f"{name} must be true or false, not {value!r}")


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RequestValidationError.invalid("body", name, f"{name} must be a non-empty string")
    return value.strip()


def _maybe_json(value: Any, name: str) -> Any:
    """Multipart fields are text: a JSON list or object arrives as its JSON."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RequestValidationError.invalid("body", name, f"{name} is not valid JSON: {exc}") from exc
    return value


def _features(body: Any, multipart: bool) -> list[str] | None:
    if multipart:
        values = body.getlist("features")
        if not values:
            return None
        raw: Any = _maybe_json(values[0], "features") if len(values) == 1 else values
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
    else:
        raw = body.get("features")
        if raw is None:
            return None
    if not isinstance(raw, list) or not all(isinstance(ref, str) for ref in raw):
        raise RequestValidationError.invalid("body", "features", 'features must be a list of "view:feature" strings')
    if not raw:
        raise RequestValidationError.invalid("body", "features", "features is empty: name at least one feature")
    refs = [ref.strip() for ref in raw]
    for i, ref in enumerate(refs):
        view, sep, feature = ref.partition(":")
        if not (sep and view and feature) or ":" in feature:
            raise RequestValidationError(
                [
                    error_item(
                        ["body", "features", str(i)], f"{ref!r} is not a feature reference of the form view:feature"
                    )
                ]
            )
    return refs


def _save_as(value: Any) -> SaveAs | None:
    value = _maybe_json(value, "save_as")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise RequestValidationError.invalid("body", "save_as", "save_as must be an object {name, description, tags}")
    unknown = sorted(set(value) - {"name", "description", "tags"})
    if unknown:
        raise RequestValidationError.invalid("body", "save_as", f"save_as has unknown field(s) {', '.join(unknown)}")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RequestValidationError([error_item(["body", "save_as", "name"], "Field required", "missing")])
    if not NAME_RE.match(name.strip()):
        raise RequestValidationError(
            [
                error_item(
                    ["body", "save_as", "name"],
                    f"save_as.name {name!r} is not a valid name (letters, digits, _ . -, not starting with . or -)",
                )
            ]
        )
    tags = value.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) for k in tags):
        raise RequestValidationError.invalid("body", "save_as", "save_as.tags must be a mapping of tag to value")
    description = value.get("description") or ""
    if not isinstance(description, str):
        raise RequestValidationError.invalid("body", "save_as", "save_as.description must be a string")
    return SaveAs(name=name.strip(), description=description, tags={k: str(v) for k, v in tags.items()})


def _entities(value: Any) -> dict[str, list[Any]]:
    if not isinstance(value, dict):
        raise RequestValidationError.invalid("body", "entities", "entities must be an object {column: [values]}")
    if not value:
        raise RequestValidationError.invalid("body", "entities", "entities is empty: the entity set has no columns")
    lengths = {}
    for column, values in value.items():
        if not isinstance(values, list):
            raise RequestValidationError.invalid(
                "body", "entities", f"entities column {column!r} must be a list of values"
            )
        lengths[column] = len(values)
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{c}: {n}" for c, n in lengths.items())
        raise RequestValidationError.invalid("body", "entities", f"entities columns differ in length ({sizes})")
    return value


def _file_summary(upload: UploadedFile) -> dict[str, Any]:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return {
        "name": upload.name,
        "size": upload.size,
        "content_type": upload.content_type,
        "sha256": digest.hexdigest(),
    }


def parse_request(request: Request) -> HistoricalRequest:
    """Read and check the body; raise RequestValidationError naming the first field at fault."""
    body = request.data
    multipart = hasattr(body, "getlist")
    if not multipart and not isinstance(body, dict):
        raise RequestValidationError([error_item(["body"], "the body must be a JSON object")])
    project = _text(body.get("project"), "project")
    if project is None:
        raise RequestValidationError.missing("body", "project")
    features = _features(body, multipart)
    service = _text(body.get("feature_service"), "feature_service")
    if (features is None) == (service is None):
        raise RequestValidationError(
            [error_item(["body", "features"], "name either features or feature_service (exactly one)", "missing")]
        )

    upload = request.FILES.get("entity_file") if multipart else None
    entities_raw = None if multipart else body.get("entities")
    if multipart and body.get("entities"):
        raise RequestValidationError.invalid(
            "body", "entities", "a multipart request sends its entity rows as entity_file (Parquet or CSV)"
        )
    sql = _text(body.get("entity_sql"), "entity_sql")
    if sql is not None:
        try:
            check_select(sql)
        except OfflineInputError as exc:
            raise RequestValidationError.invalid("body", "entity_sql", str(exc)) from exc
    given = [name for name, v in zip(ENTITY_SOURCES, (entities_raw, upload, sql), strict=True) if v is not None]
    if len(given) != 1:
        msg = (
            "send the entity rows as one of entities (JSON columns), entity_file (upload) or entity_sql"
            if not given
            else f"send the entity rows one way only, not {' and '.join(given)}"
        )
        raise RequestValidationError([error_item(["body", "entities"], msg, "missing" if not given else "value_error")])

    run_async = _bool(request.query_params.get("async", body.get("async", False)), "async")
    parsed = HistoricalRequest(
        project=project,
        features=features,
        feature_service=service,
        full_feature_names=_bool(body.get("full_feature_names", False), "full_feature_names"),
        format=format_from_request(request, body.get("format")),
        run_async=run_async,
        entities=_entities(entities_raw) if entities_raw is not None else None,
        entity_file=upload,
        entity_sql=sql,
        save_as=_save_as(body.get("save_as")),
    )
    parsed.record = _record(request, body, multipart, upload)
    return parsed


def _record(request: Request, body: Any, multipart: bool, upload: UploadedFile | None) -> dict[str, Any]:
    """The request as received: the JSON body itself; for a multipart body its fields (a
    JSON field decoded) and the uploaded file's name, size and SHA-256; query parameters
    under `query`."""
    if multipart:
        record: dict[str, Any] = {}
        for key in body:
            values = body.getlist(key)
            value = values if key == "features" and len(values) > 1 else values[-1]
            record[key] = _maybe_json(value, key) if key in ("features", "save_as") else value
        if upload is not None:
            record["entity_file"] = _file_summary(upload)
    else:
        record = dict(body)
    query = {k: v for k, v in request.query_params.items() if k in ("async", "format")}
    if query:
        record["query"] = query
    return record
