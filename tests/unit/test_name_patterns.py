"""Permission name patterns matched in SQL (access.name_patterns, used by
access.policy.restrict for the search and every list): which patterns qualify, that
the anchored form means exactly `re.fullmatch` (here with Python's engine, which is
SQLite's REGEXP; tests/integration/test_search_postgres.py checks PostgreSQL's), and
that restrict() still agrees with is_allowed() whichever path a pattern takes."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from access.models import Permission
from access.name_patterns import sql_regex
from access.policy import is_allowed, restrict
from access.principals import forget_principal
from catalog.models import DataSource, FeatureView, Project

ACCEPTED = [
    "driver_.*",
    "team_a_.*",
    "driver",
    ".*_stats",
    "churn_.*|customer_.*",
    "(driver|rider)_[a-z0-9]+_v[0-9]{1,3}",
    "(?:ds|dataset)-[0-9]{2,}",
    "[^x]*",
    r"a\.b",
    r"\(x\)",
    "[-a-c_]+",
    "  padded_.*  ",  # stripped, as access.policy strips
    "",
]
REFUSED = [
    "(bad",
    "[x",
    "x]",
    r"\d+",
    r"\w+",
    r"\bx",
    "a{,3}",
    "a{300}",
    "a{3,2}",
    "a*?",
    "a++",
    "a**",
    "[[:alpha:]]",
    "[]a]",
    "[z-a]",
    "^driver",
    "driver$",
    "(?i)driver",
    "(?P<n>a)",
    r"(a)\1",
    "(?=a)a",
    "a|",
    "()",
    "*a",
    "é",
    "a\nb",
    "a\tb",
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_patterns_of_the_portable_subset_are_translated(pattern):
    regex = sql_regex(pattern)
    assert regex is not None and regex.startswith("\\A") and regex.endswith("\\Z")


@pytest.mark.parametrize("pattern", REFUSED)
def test_other_syntax_is_left_to_python(pattern):
    assert sql_regex(pattern) is None


def test_the_dot_does_not_match_a_newline_in_either_engine():
    assert sql_regex("driver_.*") == "\\A(?:driver_[^\\n]*)\\Z"


# Patterns drawn from the accepted grammar, names from an alphabet that includes the
# characters where engines differ (newline, non-ASCII, regex punctuation).
_ATOMS = ["a", "b", "_", "-", ".", "x", "1", "[a-c]", "[^a]", "[-b]", "[a_]", "\\.", "\\-", " ", ":", "[0-9]"]
_QUANTIFIERS = ["", "", "*", "+", "?", "{2}", "{1,}", "{0,2}"]
_atom = st.builds(lambda a, q: a + q, st.sampled_from(_ATOMS), st.sampled_from(_QUANTIFIERS))


# Groups repeat a bounded number of times only: `(a*)*` and the like make Python's
# backtracking matcher exponential in the name's length (a test that hung in CI), and
# bounded repetition exercises the same translation.
_GROUP_QUANTIFIERS = ["", "", "?", "{2}", "{0,2}"]


def _grouped(inner: st.SearchStrategy) -> st.SearchStrategy:
    branch = st.lists(inner, min_size=1, max_size=3).map("".join)
    alternation = st.lists(branch, min_size=1, max_size=2).map("|".join)
    return st.builds(
        lambda opener, body, q: f"{opener}{body}){q}",
        st.sampled_from(["(", "(?:"]),
        alternation,
        st.sampled_from(_GROUP_QUANTIFIERS),
    )


_piece = st.recursive(_atom, _grouped, max_leaves=6)
patterns = st.lists(st.lists(_piece, min_size=1, max_size=4).map("".join), min_size=1, max_size=2).map("|".join)
names = st.text(alphabet="ab_-.x1 :\n\u00e9Z()", max_size=8)


@settings(max_examples=300, deadline=None)
@given(pattern=patterns, candidates=st.lists(names, max_size=15))
def test_the_anchored_form_means_fullmatch(pattern, candidates):
    regex = sql_regex(pattern)
    if regex is None:
        # Only when stripping the pattern left a quantifier first (invalid in both engines)
        # or an empty first or last branch (refused, so Python decides): never otherwise.
        stripped = pattern.strip()
        assert stripped[:1] in ("*", "+", "?", "{") or stripped.startswith("|") or stripped.endswith("|"), pattern
        return
    for name in candidates:
        assert (re.search(regex, name) is not None) == (re.fullmatch(pattern.strip(), name) is not None), (
            pattern,
            regex,
            name,
        )


# -- restrict() with both paths -----------------------------------------------------------
@pytest.fixture
def views():
    alpha = Project.objects.create(name="alpha")
    source = DataSource.objects.create(project=alpha, name="src", kind="file")
    names = ["driver_a", "driver_b", "driver_\n", "rider_a", "DRIVER_c", "driver"]
    return alpha, [FeatureView.objects.create(project=alpha, name=n, source=source) for n in names]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("patterns", "in_sql"),
    [
        (["driver_.*"], True),
        (["rider_.*", "driver"], True),
        (["(?i)driver_.*"], False),  # inline flag: Python only
        (["driver_\\w"], False),  # \w is Unicode in Python, locale-bound in SQL
    ],
)
def test_restrict_agrees_with_is_allowed_on_both_paths(views, make_user, patterns, in_sql):
    alpha, objects = views
    user = make_user("reader", roles=("reader",))
    Permission.objects.create(
        project=alpha, name="p", types=["feature_view"], name_patterns=patterns, actions=["DESCRIBE"], roles=["reader"]
    )
    forget_principal(user)
    queryset = restrict(FeatureView.objects.all(), user)
    assert ("REGEXP" in str(queryset.query)) == in_sql
    expected = {v.name for v in objects if is_allowed(user, "DESCRIBE", v)}
    assert set(queryset.values_list("name", flat=True)) == expected
    assert expected  # each case admits something ...
    assert expected != {v.name for v in objects}  # ... and hides something


@pytest.mark.django_db
def test_a_pattern_matched_in_sql_loads_no_names_in_python(views, make_user):
    alpha, _ = views
    user = make_user("reader", roles=("reader",))
    Permission.objects.create(
        project=alpha,
        name="p",
        types=["feature_view"],
        name_patterns=["driver_.*"],
        actions=["DESCRIBE"],
        roles=["reader"],
    )
    forget_principal(user)
    with CaptureQueriesContext(connection) as queries:
        queryset = restrict(FeatureView.objects.all(), user)
    assert not [q for q in queries if "catalog_featureview" in q["sql"]]  # no per-request read of every name
    assert sorted(queryset.values_list("name", flat=True)) == ["driver_a", "driver_b"]
