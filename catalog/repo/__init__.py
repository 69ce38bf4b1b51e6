"""Feature-repo plan/apply: YAML definitions in, an exact diff of the registry out.

    definition = load_repo("examples/driver_stats")   # problems collected in .errors
    print(plan(definition))                           # dry run
    apply(definition, user=None, actor="cli")          # one transaction, in place

The REST API uses `apply_object` / `delete_object` for one object at a time, and
`canonical(obj)` for the normalised dict of a registry row. The format is
documented in docs/feature-repo.md.
"""

from .applier import apply, plan
from .canonical import canonical
from .diff import Change, Plan
from .errors import ObjectNotFound, PythonTransformationForbidden, RepoValidationError, ValidationIssue
from .loader import build_definition, load_repo
from .objects import apply_object, delete_object
from .spec import RepoDefinition

__all__ = [
    "Change",
    "ObjectNotFound",
    "Plan",
    "PythonTransformationForbidden",
    "RepoDefinition",
    "RepoValidationError",
    "ValidationIssue",
    "apply",
    "apply_object",
    "build_definition",
    "canonical",
    "delete_object",
    "load_repo",
    "plan",
]
