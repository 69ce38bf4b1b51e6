"""Feast-shaped API errors: {status_code, detail, error_type}.

401 `AuthenticationError`, 403 `FeastPermissionError`, 404 `FeastObjectNotFoundException`,
422 `RequestValidationError` whose `detail` is a list of FastAPI-style items
`{"loc": [...], "msg": ..., "type": ...}` (what Feast's REST server answers for bad
query parameters, so clients need one parser for both).
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_item(loc: list[str], msg: str, kind: str = "value_error") -> dict[str, Any]:
    """One validation problem: where (`["query", "project"]`, `["body", "tags"]`), what, which kind."""
    return {"loc": list(loc), "msg": msg, "type": kind}


class RequestValidationError(exceptions.APIException):
    """422 with a list of problems, each naming the parameter or body field at fault."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "Invalid request"
    default_code = "invalid"

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e.get("msg", "")) for e in self.errors) or self.default_detail)

    @classmethod
    def missing(cls, location: str, name: str) -> "RequestValidationError":
        return cls([error_item([location, name], "Field required", "missing")])

    @classmethod
    def invalid(cls, location: str, name: str, message: str) -> "RequestValidationError":
        return cls([error_item([location, name], message)])


def _error_type(exc: Exception) -> tuple[Exception, str]:
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or "Not found."), "FeastObjectNotFoundException"
    if isinstance(exc, exceptions.NotFound):
        return exc, "FeastObjectNotFoundException"
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied(str(exc) or "Permission denied"), "FeastPermissionError"
    if isinstance(exc, exceptions.PermissionDenied):
        return exc, "FeastPermissionError"
    if isinstance(exc, exceptions.NotAuthenticated):
        return exceptions.NotAuthenticated("Missing authentication token"), "AuthenticationError"
    if isinstance(exc, exceptions.AuthenticationFailed):
        return exc, "AuthenticationError"
    if isinstance(exc, exceptions.ParseError):  # a body that is not JSON: FastAPI's 422 json_invalid
        return RequestValidationError([error_item(["body"], str(exc.detail), "json_invalid")]), "RequestValidationError"
    if isinstance(exc, exceptions.ValidationError | RequestValidationError):
        return exc, "RequestValidationError"
    return exc, type(exc).__name__


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Errors in Feast's REST shape: {status_code, detail, error_type}."""
    exc, error_type = _error_type(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, RequestValidationError):
        detail: Any = exc.errors
    elif isinstance(response.data, dict):
        detail = response.data.get("detail", response.data)
    else:
        detail = response.data
    if response.status_code == status.HTTP_400_BAD_REQUEST and error_type == "RequestValidationError":
        response.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    response.data = {"status_code": response.status_code, "detail": detail, "error_type": error_type}
    return response
