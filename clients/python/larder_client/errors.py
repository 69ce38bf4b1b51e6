"""Exceptions carrying what the server said: status, detail, error type.

Larder answers errors in two shapes: its API's `{"status_code", "detail", "error_type"}`
(`detail` a string, or for 422 a list of `{"loc", "msg", "type"}` items), and, on
Feast's feature-server paths (/get-online-features, /push), Feast's JSON string holding
`{"module", "class", "message"}`. Both become one of the classes below, with `detail`
as a readable message naming the field or object at fault.
"""

from __future__ import annotations

import json
from typing import Any


class LarderError(Exception):
    """An error answer from Larder (or a job that failed)."""

    def __init__(self, detail: str, status_code: int = 0, error_type: str = "", body: Any = None):
        super().__init__(f"{status_code} {error_type}: {detail}" if status_code else detail)
        self.detail = detail
        self.status_code = status_code
        self.error_type = error_type
        self.body = body


class AuthenticationError(LarderError):
    """401: no token, or one the server does not accept."""


class PermissionDenied(LarderError):
    """403: the gate refused; `detail` names the action and the object."""


class NotFound(LarderError):
    """404: a project, view, feature, service or job that does not exist (or that you may not see)."""


class Conflict(LarderError):
    """409: a name already taken (save_as), or a job result asked for before the job finished."""


class Gone(LarderError):
    """410: a job result that expired and was deleted."""


class InvalidRequest(LarderError):
    """422 (or another 4xx): bad input; `detail` names the field or column."""


class ServerError(LarderError):
    """5xx: the server or one of its stores failed."""


class JobFailed(LarderError):
    """An asynchronous training-set job ended FAILED; `detail` is the job's error."""


class JobTimeout(LarderError):
    """An asynchronous job did not finish within the client's timeout; `job_id` says which."""

    def __init__(self, detail: str, job_id: str):
        super().__init__(detail)
        self.job_id = job_id


_BY_STATUS = {401: AuthenticationError, 403: PermissionDenied, 404: NotFound, 409: Conflict, 410: Gone}


def _readable(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                msg = str(item.get("msg", ""))
                parts.append(f"{loc}: {msg}" if loc and loc not in msg else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def error_from_response(status_code: int, text: str) -> LarderError:
    """The exception for an error answer, whichever of Larder's two shapes it has."""
    error_type, detail, body = "", text.strip() or f"HTTP {status_code}", None
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, str):  # Feast's feature-server shape: a JSON string of {module, class, message}
        try:
            inner = json.loads(body)
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            error_type, detail = str(inner.get("class", "")), str(inner.get("message", body))
        else:
            detail = body
    elif isinstance(body, dict):
        error_type = str(body.get("error_type", ""))
        detail = _readable(body.get("detail", body))
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else InvalidRequest)
    return cls(detail, status_code, error_type, body)
