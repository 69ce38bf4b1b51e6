"""Errors of the feature-server endpoints in Feast's feature-server shape.

Feast (`feature_server.py`, `rest_exception_handler`) answers a FeastError with its
HTTP status and a body that is a JSON string holding `{"module", "class", "message"}`
(double-encoded), which the Feast remote online store client decodes into the same
exception class (serving.errors). Authentication failures (401) and wrong methods
(405) keep the API's usual shape (access.api_errors), as they do not come from here.
"""

import json
import logging
from typing import Any

import orjson
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse

from access.api_errors import exception_handler as api_exception_handler
from serving.errors import ServingError
from serving.online import OnlineStoreError, OnlineStoreUnavailable

logger = logging.getLogger("serving.api")


def feast_error_response(status: int, feast_class: str, message: str) -> HttpResponse:
    """Feast's body: a JSON string of {"module", "class", "message"} (json.dumps, as Feast)."""
    detail = json.dumps({"module": "feast.errors", "class": feast_class, "message": message})
    return HttpResponse(orjson.dumps(detail), status=status, content_type="application/json")


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    if isinstance(exc, ServingError):
        if exc.status_code >= 500:
            logger.error("%s: %s", type(exc).__name__, exc.message, exc_info=exc.__cause__ is not None)
        return feast_error_response(exc.status_code, exc.feast_class, exc.message)
    if isinstance(exc, PermissionDenied):  # access.policy.AccessDenied names the object and the actions
        return feast_error_response(403, "FeastPermissionError", str(exc) or "Permission denied")
    if isinstance(exc, OnlineStoreUnavailable):
        logger.error("online store unavailable: %s", exc)
        return feast_error_response(503, "FeastError", str(exc))
    if isinstance(exc, OnlineStoreError):
        logger.exception("online store failed")
        return feast_error_response(500, "FeastError", str(exc))
    return api_exception_handler(exc, context)
