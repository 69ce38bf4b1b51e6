"""The curl example on feature view, on-demand view and feature service pages.

A ready-to-run `POST /get-online-features` in Feast's request shape, with the real
join key names and, when the offline data can tell one cheaply, a real entity value
(the first row of the first Parquet file of a file source, read with pyarrow: only
the key columns, one row group, cached by file and modification time). Otherwise a
placeholder by value type (1001 for integers). The token is `$TOKEN`: a personal
API token from the API tokens page (docs/identity.md).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

PLACEHOLDERS = {
    "Int32": 1001,
    "Int64": 1001,
    "String": "1001",
    "Float32": 0.5,
    "Float64": 0.5,
    "Bool": True,
    "Bytes": "",
    "UnixTimestamp": 1700000000,
}


@dataclass
class CurlExample:
    command: str
    sampled: list[str] = field(default_factory=list)  # join keys whose value came from data
    placeholders: list[str] = field(default_factory=list)  # join keys / request fields with made-up values


def _first_parquet(path: Path) -> Path | None:
    if path.is_file():
        return path
    if path.is_dir():
        return next(iter(sorted(path.rglob("*.parquet"))), None)
    return None


@lru_cache(maxsize=256)
def _first_row(file: str, mtime: float, columns: tuple[str, ...]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file)
    present = [c for c in columns if c in parquet.schema_arrow.names]
    if not present or parquet.metadata.num_row_groups == 0:
        return {}
    table = parquet.read_row_group(0, columns=present)
    if table.num_rows == 0:
        return {}
    return {c: table.column(c)[0].as_py() for c in present}


def sample_values(source: Any, join_keys: list[str]) -> dict[str, Any]:
    """{join key: a value seen in the data} for the keys a file source can tell."""
    if source is None or source.kind != "file" or not source.path or not join_keys:
        return {}
    file = _first_parquet(Path(source.path))
    if file is None:
        return {}
    renamed = {dst: src for src, dst in (source.field_mapping or {}).items()}
    columns = {key: renamed.get(key, key) for key in join_keys}
    try:
        row = _first_row(str(file), file.stat().st_mtime, tuple(sorted(set(columns.values()))))
    except Exception as exc:  # a broken file must not break the page: fall back to placeholders
        log.info("no sample entity value from %s: %s", file, exc)
        return {}
    return {key: row[col] for key, col in columns.items() if isinstance(row.get(col), int | str)}


@dataclass
class KeySpec:
    """The entity columns (and request fields) a request needs, with a value each."""

    values: dict[str, Any] = field(default_factory=dict)
    sampled: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)

    def add_view(self, view: Any) -> None:
        """The join keys of a feature view, sampled from its batch source when possible."""
        entities = list(view.entities.all())
        keys = [k for e in entities for k in e.join_keys if k not in self.values]
        types = {k: e.value_type for e in entities for k in e.join_keys}
        found = sample_values(view.batch_source, keys)
        for key in keys:
            if key in found:
                self.values[key] = found[key]
                self.sampled.append(key)
            else:
                self.values[key] = PLACEHOLDERS.get(types.get(key) or "Int64", 1001)
                self.placeholders.append(key)

    def add_request_source(self, source: Any) -> None:
        for item in source.schema or []:
            name = item.get("name")
            if name and name not in self.values:
                self.values[name] = PLACEHOLDERS.get(item.get("dtype", ""), 1)
                self.placeholders.append(name)


def _payload(body: dict[str, Any]) -> str:
    """JSON with one line per top-level key (lists and maps of entities stay on one line)."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value, default=str)}" for key, value in body.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def render_curl(body: dict[str, Any]) -> str:
    payload = _payload(body)
    payload = payload.replace("'", "'\\''")  # a quote inside the shell's single quotes
    return (
        f"curl -sS -X POST {settings.LARDER_PUBLIC_URL}/get-online-features \\\n"
        '  -H "Authorization: Bearer $TOKEN" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{payload}'"
    )


def _example(body_head: dict[str, Any], keys: KeySpec) -> CurlExample:
    body = {**body_head, "entities": {k: [v] for k, v in keys.values.items()}}
    return CurlExample(render_curl(body), keys.sampled, keys.placeholders)


def for_feature_view(view: Any) -> CurlExample:
    """`view` with its entities (and their join keys), fields and source loaded."""
    keys = KeySpec()
    keys.add_view(view)
    features = [f"{view.name}:{f.name}" for f in view.fields.all()]
    return _example({"features": features}, keys)


def for_on_demand_view(odfv: Any) -> CurlExample:
    keys = KeySpec()
    for view in odfv.sources.all():
        keys.add_view(view)
    for source in odfv.request_sources.all():
        keys.add_request_source(source)
    features = [f"{odfv.name}:{f.name}" for f in odfv.fields.all()]
    return _example({"features": features}, keys)


def for_feature_service(service: Any, projections: list[Any]) -> CurlExample:
    keys = KeySpec()
    for projection in projections:
        if projection.feature_view_id:
            keys.add_view(projection.feature_view)
        else:
            odfv = projection.on_demand_feature_view
            for view in odfv.sources.all():
                keys.add_view(view)
            for source in odfv.request_sources.all():
                keys.add_request_source(source)
    return _example({"feature_service": service.name}, keys)
