"""Refuse permission name patterns that Python's backtracking matcher may take
exponential time on.

`access.policy` matches `name_patterns` with `re.fullmatch` on every gated request
(and access.name_patterns hands only a subset to the database). A pattern such as
`(a*)*b` or `(a|ab)*c` makes that match take time exponential in the name's length, so
one careless pattern would slow every request that touches its project. What is refused,
on the parsed pattern:

- a repetition without a small bound (`*`, `+`, `{m,}`, `{m,n}` with n > 32) that
  contains another such repetition, or an alternation: the inner part can then
  split the same text in exponentially many ways.

Possessive repetitions and atomic groups do not backtrack and are allowed. Plain
sequences of repetitions (`a.*_.*`) are polynomial and allowed.
"""

from __future__ import annotations

import re
from typing import Any

try:  # Python 3.11+
    from re import _constants as c
    from re import _parser as parser
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as c  # type: ignore[no-redef]
    import sre_parse as parser  # type: ignore[no-redef]

SMALL_BOUND = 32
_BACKTRACKING = {c.MAX_REPEAT, c.MIN_REPEAT}


def _wide(hi: int) -> bool:
    return hi == c.MAXREPEAT or hi > SMALL_BOUND


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns of one node that backtracking can re-enter."""
    if op == c.SUBPATTERN:
        return [av[-1]]
    if op in (c.ASSERT, c.ASSERT_NOT):
        return [av[1]]
    if op == c.GROUPREF_EXISTS:
        return [part for part in av[1:] if part is not None]
    if op == c.BRANCH:
        return list(av[1])
    return []  # POSSESSIVE_REPEAT and ATOMIC_GROUP never backtrack into their content


def _risky(items: Any, inside_wide_repeat: bool) -> bool:
    for op, av in items:
        if op in _BACKTRACKING:
            _lo, hi, sub = av
            wide = _wide(hi)
            if (wide and inside_wide_repeat) or _risky(sub, inside_wide_repeat or wide):
                return True
            continue
        if op == c.BRANCH and inside_wide_repeat:
            return True
        if any(_risky(child, inside_wide_repeat) for child in _children(op, av)):
            return True
    return False


def backtracking_risk(pattern: str) -> str | None:
    """Why `pattern` may match in exponential time, or None when it is safe (or not a
    valid regular expression: compiling reports that)."""
    try:
        tree = parser.parse(pattern.strip())
    except re.error:
        return None
    if _risky(tree, False):
        return (
            "a repetition (*, +, {m,} or {m,n} with n > 32) contains another repetition or an "
            "alternation, which can make matching take exponential time; rewrite it without "
            "the nesting (e.g. `(a|b)*` as `[ab]*`, `(a+)*` as `a*`)"
        )
    return None
