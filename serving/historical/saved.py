"""`save_as`: a training set kept as a SavedDataset (Feast's create_saved_dataset).

The rows go to LARDER_DATA_DIR/saved/<project>/<name>.parquet (written to a temporary
file, then renamed: never half a file under the name); the registry row keeps the
features, join keys, full_feature_names, the feature service, the exact request, the
entity event-time range and who made it. Gate: CREATE on the saved dataset (its
project, name and tags). A name already taken in the project: 409 naming it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.exceptions import APIException

from access.actions import Action
from access.policy import authorize
from catalog.admin_audit import bump_versions
from catalog.models import FeatureService, Project, RegistryChange, SavedDataset
from serving.offline.entity import infer_timestamp_column

from .request import SaveAs
from .resolve import HistoricalPlan

SAFE_NAME = str.maketrans({c: "_" for c in "/\\:\0"})


class SavedDatasetExists(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A saved dataset of that name exists"
    default_code = "conflict"


def _exists_message(name: str, project: str) -> str:
    return f"save_as: saved dataset {name} already exists in project {project}; choose another name"


def storage_path(project: str, name: str) -> Path:
    return (
        Path(settings.LARDER_DATA_DIR) / "saved" / project.translate(SAFE_NAME) / f"{name.translate(SAFE_NAME)}.parquet"
    )


def check_save_as(user: Any, plan: HistoricalPlan, save_as: SaveAs) -> None:
    """Before any work: CREATE on the dataset-to-be (403 naming it), and its name free (409)."""
    project = Project.objects.get(pk=plan.project_id)
    authorize(user, Action.CREATE, SavedDataset(project=project, name=save_as.name, tags=save_as.tags))
    if SavedDataset.objects.filter(project=project, name=save_as.name).exists():
        raise SavedDatasetExists(_exists_message(save_as.name, project.name))


def _time_range(table: pa.Table) -> tuple[datetime | None, datetime | None]:
    try:
        column = table.column(infer_timestamp_column(table))
    except ValueError:
        return None, None
    bounds = pc.min_max(column)
    return bounds["min"].as_py(), bounds["max"].as_py()


def _write_atomically(target: Path, write: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_dataset(
    user: Any,
    plan: HistoricalPlan,
    save_as: SaveAs,
    request_record: dict[str, Any],
    table: pa.Table | None = None,
    parquet_path: Path | None = None,
) -> SavedDataset:
    """Store the rows (`table`, or a finished result file `parquet_path`) and register the
    dataset. Re-checks CREATE and the name (a job saves long after the request)."""
    check_save_as(user, plan, save_as)
    target = storage_path(plan.project, save_as.name)
    if table is not None:
        low, high = _time_range(table)
    else:
        assert parquet_path is not None
        schema = pq.read_schema(parquet_path)
        ts_names = [f.name for f in schema if pa.types.is_timestamp(f.type)]
        ts = "event_timestamp" if "event_timestamp" in schema.names else (ts_names[0] if ts_names else None)
        low, high = _time_range(pq.read_table(parquet_path, columns=[ts])) if ts else (None, None)
    service = (
        FeatureService.objects.filter(project_id=plan.project_id, name=plan.feature_service).first()
        if plan.feature_service
        else None
    )
    try:
        # The row first, the file inside the same transaction: a name taken meanwhile fails
        # the insert before any file is touched, and a failed write leaves no row.
        with transaction.atomic():
            dataset = SavedDataset.objects.create(
                project_id=plan.project_id,
                name=save_as.name,
                description=save_as.description,
                tags=save_as.tags,
                features=plan.feature_refs,
                join_keys=plan.join_keys,
                full_feature_names=plan.full_feature_names,
                feature_service=service,
                storage=str(target),
                request=request_record,
                min_event_timestamp=low,
                max_event_timestamp=high,
                created_by=user if getattr(user, "pk", None) else None,
            )
            RegistryChange.objects.create(
                project_id=plan.project_id,
                project_name=plan.project,
                object_type=SavedDataset.resource_type,
                object_name=save_as.name,
                action=RegistryChange.Action.CREATE,
                diff={"features": dataset.features, "storage": dataset.storage, "join_keys": dataset.join_keys},
                user=dataset.created_by,
                actor="api",
            )
            bump_versions([plan.project_id])
            if table is not None:
                _write_atomically(target, lambda tmp: pq.write_table(table, tmp))
            else:
                _write_atomically(target, lambda tmp: shutil.copyfile(parquet_path, tmp))
    except IntegrityError as exc:  # a concurrent request took the name between check and insert
        raise SavedDatasetExists(_exists_message(save_as.name, plan.project)) from exc
    return dataset
