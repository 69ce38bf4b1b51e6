"""Errors of plan/apply: every validation problem is collected, each naming where it is."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in a feature repo (or an API payload): which file, which object,
    which field, and what is wrong. `file` is empty for objects that came from the
    API or from the registry itself."""

    file: str
    object_type: str
    object_name: str
    field: str
    message: str

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.object_type:
            parts.append(f"{self.object_type} {self.object_name!r}" if self.object_name else self.object_type)
        if self.field:
            parts.append(f"field {self.field!r}")
        parts.append(self.message)
        return ": ".join(parts)

    def as_dict(self) -> dict[str, str]:
        return {
            "file": self.file,
            "object_type": self.object_type,
            "object_name": self.object_name,
            "field": self.field,
            "message": self.message,
        }


class RepoValidationError(ValueError):
    """The repo (or API payload) is invalid; nothing was written. `.errors` lists all problems."""

    def __init__(self, errors: list[ValidationIssue]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid feature repo")

    @classmethod
    def single(cls, message: str, *, object_type: str = "", object_name: str = "", field: str = "", file: str = ""):
        return cls([ValidationIssue(file, object_type, object_name, field, message)])


class ObjectNotFound(RepoValidationError, LookupError):
    """delete_object (or an update through the API) named an object that does not exist."""


class PythonTransformationForbidden(PermissionDenied):
    """A python-mode on-demand view names server code to run: only superusers may apply
    one through the API (the CLI runs as the operator and is not affected). A
    PermissionDenied, so the API's error handler answers 403."""
