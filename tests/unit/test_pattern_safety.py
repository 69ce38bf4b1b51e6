"""access.pattern_safety: permission name patterns that could make the gate's
`re.fullmatch` take exponential time are refused when written, the usual ones pass."""

import pytest
from django.core.exceptions import ValidationError

from access.models import Permission, validate_patterns
from access.pattern_safety import backtracking_risk

SAFE = [
    "driver_.*",
    ".*",
    "(?i)CHURN_.*",
    r"\w+_churn",
    "customer_.*|secret_churn",
    "a.*_.*_.*",
    "(driver|rider)_.*",
    "[ab]*",
    "(a|b)*",
    "(?:ab)*",
    "x{1,10}",
    "(a{1,5}){1,5}",
    "(?>a*)*",  # atomic: no backtracking into it
    "a*+",  # possessive
]
RISKY = ["(a*)*b", "(a+)+", "(a|ab)*c", "(x.*)*", "(?:a{1,100})*", "(?=(a*)*)x", "((ab)*)+"]


@pytest.mark.parametrize("pattern", SAFE)
def test_usual_patterns_pass(pattern):
    assert backtracking_risk(pattern) is None
    validate_patterns([pattern])


@pytest.mark.parametrize("pattern", RISKY)
def test_nested_repetition_is_refused_by_the_model_validator(pattern):
    assert backtracking_risk(pattern)
    with pytest.raises(ValidationError, match="exponential time"):
        validate_patterns([pattern])


@pytest.mark.django_db
def test_the_admin_path_refuses_it_too():
    from catalog.models import Project

    permission = Permission(
        project=Project.objects.create(name="p"), name="bad", actions=["DESCRIBE"], roles=["r"], name_patterns=["(a+)+"]
    )
    with pytest.raises(ValidationError) as error:
        permission.full_clean()
    assert "name_patterns" in error.value.message_dict
