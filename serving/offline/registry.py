"""Offline engines by short type name (Feast's repo_config idea), chosen by source kind.

    file     -> duckdb    DuckDB over Parquet files and folders
    postgres -> postgres  the join runs inside PostgreSQL

LARDER_OFFLINE_ENGINES (a dict, optional) overrides the kind -> type name map; a type
name may also be a dotted path to an OfflineEngine subclass. One instance per type and
process: engines are stateless (a connection per call).
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import OfflineEngine, OfflineInputError
from .specs import SourceSpec

OFFLINE_ENGINES = {
    "duckdb": "serving.offline.duckdb.DuckDBOfflineEngine",
    "postgres": "serving.offline.postgres.PostgresOfflineEngine",
}
ENGINE_BY_SOURCE_KIND = {"file": "duckdb", "postgres": "postgres"}
_SETTINGS = {"LARDER_OFFLINE_ENGINES", "LARDER_DUCKDB_MEMORY_LIMIT", "LARDER_DUCKDB_THREADS", "LARDER_DUCKDB_TEMP_DIR"}

_lock = threading.Lock()
_engines: dict[str, OfflineEngine] = {}


def offline_engine_class(type_name: str) -> type[OfflineEngine]:
    """The class a type name (or dotted path) names; ImproperlyConfigured names the choices."""
    path = OFFLINE_ENGINES.get(type_name) or (type_name if "." in type_name else None)
    if path is None:
        choices = ", ".join(sorted(OFFLINE_ENGINES))
        raise ImproperlyConfigured(f"{type_name!r} is not an offline engine: use one of {choices}, or a dotted path")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"offline engine {type_name!r}: cannot import {path}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, OfflineEngine)):
        raise ImproperlyConfigured(f"offline engine {type_name!r}: {path} is not an OfflineEngine subclass")
    return cls


def get_engine(type_name: str) -> OfflineEngine:
    """The engine of a type name, built once per process (thread-safe)."""
    engine = _engines.get(type_name)
    if engine is None:
        with _lock:
            engine = _engines.get(type_name)
            if engine is None:
                engine = _engines[type_name] = offline_engine_class(type_name).from_settings()
    return engine


def engine_for(source: SourceSpec | str) -> OfflineEngine:
    """The engine that reads a source (or a source kind: "file", "postgres")."""
    kind = source if isinstance(source, str) else source.kind
    mapping = {**ENGINE_BY_SOURCE_KIND, **(getattr(settings, "LARDER_OFFLINE_ENGINES", None) or {})}
    type_name = mapping.get(kind)
    if type_name is None:
        raise OfflineInputError(f"{kind!r} sources have no offline engine (offline sources: file, postgres)")
    return get_engine(type_name)


def reset_engines() -> None:
    """Forget the cached engines (settings changed, or a test wants fresh ones)."""
    with _lock:
        _engines.clear()


@receiver(setting_changed)
def _on_setting_changed(setting: str, **kwargs) -> None:
    if setting in _SETTINGS:
        reset_engines()
