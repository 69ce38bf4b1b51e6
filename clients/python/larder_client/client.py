"""`Client`: Larder's REST API for data scientists, with pandas in and out.

Training sets travel as Parquet both ways (types and time zones survive); a request the
server turns into a job (202, above its row threshold or with `run_async=True`) is
followed by polling its status until it finishes, reporting progress to a callback.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from .errors import JobFailed, JobTimeout, LarderError, error_from_response

PARQUET = "application/vnd.apache.parquet"
# Integer and boolean columns with nulls stay integers and booleans (pandas' nullable types).
_NULLABLE = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
HISTORICAL = "/api/v1/historical-features"
Progress = Callable[[dict[str, Any]], None]


def _entity_parquet(entity_df: pd.DataFrame | pa.Table) -> bytes:
    table = entity_df if isinstance(entity_df, pa.Table) else pa.Table.from_pandas(entity_df, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _frame(parquet: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(parquet)).to_pandas(types_mapper=_NULLABLE.get)


def _columns(df: pd.DataFrame | Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """A DataFrame (or a mapping of columns) as JSON columns; timestamps as ISO 8601."""
    if isinstance(df, pd.DataFrame):
        out: dict[str, list[Any]] = {}
        for name in df.columns:
            series = df[name]
            if pd.api.types.is_datetime64_any_dtype(series):
                out[str(name)] = [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in series]
            else:
                out[str(name)] = [None if _is_missing(v) else _native(v) for v in series.tolist()]
        return out
    return {str(k): [_native(v) for v in values] for k, values in df.items()}


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):
        return False


def _native(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


class Client:
    """A Larder server at `url`, called with a bearer `token` (a personal API token from the
    token page, or an OIDC / service-account access token).

    `project` is the default project of every call; `timeout` bounds each HTTP request
    (seconds); asynchronous jobs are polled every `poll_interval` seconds (growing to 5).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        project: str | None = None,
        timeout: float = 300.0,
        poll_interval: float = 1.0,
        session: requests.Session | None = None,
        verify: bool | str = True,
    ):
        self.url = url.rstrip("/")
        self.project = project
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.session = session or requests.Session()
        self.session.verify = verify
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close the pooled HTTP connections (also on leaving a `with Client(...) as client:` block)."""
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        response = self.session.request(method, self.url + path, **kwargs)
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.text)
        return response

    def _project(self, project: str | None) -> str:
        chosen = project or self.project
        if not chosen:
            raise ValueError("name the project: Client(..., project=...) or project=... on the call")
        return chosen

    # -- training sets ---------------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table | str,
        features: Sequence[str] | None = None,
        *,
        feature_service: str | None = None,
        full_feature_names: bool = False,
        project: str | None = None,
        run_async: bool | None = None,
        save_as: str | Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        timeout: float | None = None,
    ) -> pd.DataFrame:
        """The point-in-time-correct training set for `entity_df`, one row per entity row.

        `entity_df` holds the join keys and an `event_timestamp` column (or one timestamp
        column), plus any columns to carry along (labels); naive times are UTC. A string is
        an SQL SELECT run by the server on the views' PostgreSQL database (`entity_sql`).
        Name `features` (`"view:feature"`) or a `feature_service`. `save_as` (a name, or
        `{"name", "description", "tags"}`) also registers the result as a saved dataset.
        `run_async=True` makes it a job even when small; large requests become jobs anyway.
        `progress` is called with the job's status after each poll; `timeout` (seconds)
        bounds the wait for a job (None: no limit).
        """
        if (features is None) == (feature_service is None):
            raise ValueError("give exactly one of features or feature_service")
        fields: dict[str, str] = {
            "project": self._project(project),
            "full_feature_names": "true" if full_feature_names else "false",
            "format": "parquet",
        }
        if features is not None:
            fields["features"] = json.dumps(list(features))
        else:
            fields["feature_service"] = str(feature_service)
        if save_as is not None:
            fields["save_as"] = json.dumps({"name": save_as} if isinstance(save_as, str) else dict(save_as))
        params = {"async": "true"} if run_async else None
        headers = {"Accept": PARQUET}
        if isinstance(entity_df, str):
            fields["entity_sql"] = entity_df
            response = self._request("POST", HISTORICAL, data=fields, params=params, headers=headers)
        else:
            upload = {"entity_file": ("entities.parquet", _entity_parquet(entity_df), PARQUET)}
            response = self._request("POST", HISTORICAL, data=fields, files=upload, params=params, headers=headers)
        if response.status_code == 202:
            job_id = response.json()["job_id"]
            self.wait_for_job(job_id, progress=progress, timeout=timeout)
            return self.job_result(job_id)
        return _frame(response.content)

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's status: `status` (PENDING, RUNNING, SUCCEEDED, FAILED), `progress`
        (`rows_total`, `rows_done`, `message`), `error`, `expires_at`..."""
        return self._request("GET", f"{HISTORICAL}/jobs/{job_id}").json()

    def wait_for_job(self, job_id: str, progress: Progress | None = None, timeout: float | None = None) -> dict:
        """Poll until the job finishes; its final status. Raises JobFailed or JobTimeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = self.poll_interval
        while True:
            status = self.job(job_id)
            if progress is not None:
                progress(status)
            if status["status"] == "SUCCEEDED":
                return status
            if status["status"] == "FAILED":
                raise JobFailed(status.get("error") or "the job failed", error_type="JobFailed", body=status)
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(f"job {job_id} is still {status['status']} after {timeout:g} s", job_id)
            time.sleep(interval)
            interval = min(interval * 1.5, 5.0)

    def job_result(self, job_id: str) -> pd.DataFrame:
        """The result of a finished job, as a DataFrame."""
        response = self._request("GET", f"{HISTORICAL}/jobs/{job_id}/result", params={"format": "parquet"})
        return _frame(response.content)

    # -- online ------------------------------------------------------------------------------------

    def get_online_features(
        self,
        features: Sequence[str] | None = None,
        entities: pd.DataFrame | Mapping[str, Sequence[Any]] | None = None,
        *,
        feature_service: str | None = None,
        full_feature_names: bool = False,
        project: str | None = None,
        as_frame: bool = False,
    ) -> dict[str, list[Any]] | pd.DataFrame:
        """The latest values for `entities` ({join key: [values]} or a DataFrame, plus request
        data of on-demand views): a dict of column -> values (Feast's `to_dict()`), the join
        keys first, or a DataFrame with `as_frame=True`."""
        if (features is None) == (feature_service is None):
            raise ValueError("give exactly one of features or feature_service")
        if entities is None:
            raise ValueError("entities are required: {join key: [values]}")
        body: dict[str, Any] = {
            "project": self._project(project),
            "entities": _columns(entities),
            "full_feature_names": full_feature_names,
        }
        if features is not None:
            body["features"] = list(features)
        else:
            body["feature_service"] = feature_service
        data = self._request("POST", "/get-online-features", json=body).json()
        names = data["metadata"]["feature_names"]
        result = {name: column["values"] for name, column in zip(names, data["results"], strict=True)}
        return pd.DataFrame(result) if as_frame else result

    # -- push --------------------------------------------------------------------------------------

    def push(
        self,
        push_source_name: str,
        df: pd.DataFrame | Mapping[str, Sequence[Any]],
        to: str = "online",
        *,
        project: str | None = None,
    ) -> dict[str, Any]:
        """Push rows through a push source: `to` is `online`, `offline` or
        `online_and_offline`. Returns what the server reports (rows written per store)."""
        body = {"project": self._project(project), "push_source_name": push_source_name, "df": _columns(df), "to": to}
        response = self._request("POST", "/push", json=body)
        report: dict[str, Any] = {"status_code": response.status_code}
        for header, key in (
            ("X-Larder-Rows-Written", "rows_written"),
            ("X-Larder-Rows-Skipped", "rows_skipped"),
            ("X-Larder-Offline-Rows-Written", "offline_rows_written"),
        ):
            if header in response.headers:
                report[key] = int(response.headers[header])
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                report.update(body)
        return report


__all__ = ["Client", "LarderError"]
