"""Errors of the serving layer, each carrying the HTTP status and the Feast error class
a Feast client maps it to.

Feast's Python feature server answers a FeastError with the error's status and a body
that is a JSON *string* holding `{"module", "class", "message"}`; the Feast remote
online store client (`feast.rest_error_handler`) json-decodes it, imports
`module.class` and raises that class with the message. Naming real classes of
`feast.errors` therefore makes a Feast client raise the same exception it would raise
against Feast (`FeatureViewNotFoundException`, `FeastPermissionError`...). For bad
input, where Feast itself answers 500 with a bare message, Larder answers 422 with the
class `FeastError` (the base of every Feast error) and a message naming the field.
"""

from __future__ import annotations


class ServingError(Exception):
    """Base of the serving errors; `feast_class` is a class name in `feast.errors`."""

    status_code = 500
    feast_class = "FeastError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServingError):
    """The request cannot be served as given; the message names the field or columns."""

    status_code = 422


class FeatureNameCollision(InvalidRequest):
    feast_class = "FeatureNameCollisionError"


class ObjectNotFound(ServingError):
    """Missing, or not visible to the caller (the same answer: docs/api.md)."""

    status_code = 404
    feast_class = "FeastObjectNotFoundException"


class FeatureViewNotFound(ObjectNotFound):
    feast_class = "FeatureViewNotFoundException"

    def __init__(self, name: str, project: str) -> None:
        super().__init__(f"Feature view {name} does not exist in project {project}")


class FeatureServiceNotFound(ObjectNotFound):
    feast_class = "FeatureServiceNotFoundException"

    def __init__(self, name: str, project: str) -> None:
        super().__init__(f"Feature service {name} does not exist in project {project}")


class FeatureNotFound(ObjectNotFound):
    def __init__(self, feature: str, view: str, project: str) -> None:
        super().__init__(f"Feature {feature} not found in feature view {view} in project {project}")


class RequestDataNotFound(ObjectNotFound):
    """Request-source fields an on-demand view needs are missing from `entities` (Feast: 404)."""

    feast_class = "RequestDataNotFoundInEntityRowsException"

    def __init__(self, fields: list[str]) -> None:
        super().__init__(
            f"Required request data source features {fields} not found in the entity rows, "
            "but required by feature views"
        )


class PushSourceNotFound(ServingError):
    status_code = 422
    feast_class = "PushSourceNotFoundException"

    def __init__(self, name: str, project: str) -> None:
        super().__init__(f"Unable to find push source '{name}' in project {project}.")


class TransformationFailed(ServingError):
    """An on-demand view's transformation raised or returned the wrong shape (a definition bug)."""

    status_code = 500


class StoreUnavailable(ServingError):
    status_code = 503
