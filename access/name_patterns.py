"""Permission name patterns as SQL regular expressions, when that is provably exact.

`access.policy` matches a permission's `name_patterns` with Python's
`re.fullmatch(pattern.strip(), name)`. Evaluating that per object in Python means
loading every candidate name on each request (2,000 views for one pattern at the
issue 7 scale), so `restrict` hands the match to the database instead, but only for
patterns whose meaning is the same in both engines:

- PostgreSQL's `~` (Advanced Regular Expressions) and Python's `re` agree on the
  small regular language accepted here: literal letters, digits and a few safe
  punctuation marks, `\\` + punctuation (a literal in both), `.`, bracket
  expressions of letters/digits/`_`/ranges (optionally negated), groups `(...)` and
  `(?:...)`, `|`, and the greedy quantifiers `* + ? {m} {m,} {m,n}` (n <= 255, the
  ARE limit). Without back-references or look-arounds both engines decide membership
  in the same regular language, so greedy/leftmost differences cannot change the
  answer.
- What differs is rewritten or refused: `.` becomes `[^\\n]` (Python's dot skips a
  newline, PostgreSQL's does not); the whole is anchored `\\A(?:...)\\Z` (both engines
  know these anchors; Python's `$` would also match before a final newline); escapes
  of letters (`\\d \\w \\b`, Unicode/locale dependent), POSIX classes, inline flags,
  lazy or possessive quantifiers, `{,n}`, empty branches, `^`/`$` inside the pattern
  and any other character are refused, and the caller falls back to Python.

On SQLite, Django's REGEXP is Python's `re.search`, so the anchored form is exact by
construction; other databases always fall back.
"""

from __future__ import annotations

from functools import lru_cache

# Literal characters (outside brackets) that mean themselves in both engines.
_LITERALS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/:@=,% ")
# Characters inside a bracket expression: letters, digits, underscore (and `-` for ranges).
_CLASS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
# After a backslash: punctuation that is a literal in both engines.
_ESCAPABLE = frozenset(".^$*+?()[]{}|\\-/_:@=,% ")
_MAX_BOUND = 255
SQL_VENDORS = ("postgresql", "sqlite")


class _Refused(Exception):
    """The pattern uses syntax whose meaning may differ between the engines."""


class _Translator:
    """Recursive descent over the accepted grammar, emitting the ARE text."""

    def __init__(self, pattern: str):
        self.text = pattern
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def alternation(self) -> str:
        branches = [self.branch()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.branch())
        return "|".join(branches)

    def branch(self) -> str:
        parts = []
        while self.peek() not in ("", "|", ")"):
            parts.append(self.atom() + self.quantifier())
        if not parts:
            raise _Refused("empty branch")
        return "".join(parts)

    def atom(self) -> str:
        char = self.take()
        if char in _LITERALS:
            return char
        if char == ".":
            return "[^\\n]"
        if char == "\\":
            escaped = self.take()
            if escaped not in _ESCAPABLE or escaped == "":
                raise _Refused("escape")
            return "\\" + escaped
        if char == "[":
            return self.bracket()
        if char == "(":
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            elif self.peek() == "?":
                raise _Refused("group extension")
            inner = self.alternation()
            if self.take() != ")":
                raise _Refused("unbalanced group")
            return f"(?:{inner})"
        raise _Refused(f"character {char!r}")

    def bracket(self) -> str:
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        items = []
        if self.peek() == "-":
            items.append("-")
            self.pos += 1
        while self.peek() != "]":
            char = self.take()
            if char not in _CLASS_CHARS:
                raise _Refused("bracket content")
            if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.pos += 1
                high = self.take()
                if high not in _CLASS_CHARS or high < char:
                    raise _Refused("bracket range")
                items.append(f"{char}-{high}")
            elif self.peek() == "-":  # a trailing `-` is a literal in both engines
                self.pos += 1
                items.append(char)
                items.append("-")
            else:
                items.append(char)
        self.pos += 1  # the closing bracket
        if not items:
            raise _Refused("empty bracket")
        # `-` goes last, where both engines read it as a literal.
        dash = "-" in items
        body = "".join(i for i in items if i != "-") + ("-" if dash else "")
        return f"[{'^' if negated else ''}{body}]"

    def quantifier(self) -> str:
        char = self.peek()
        if char in ("*", "+", "?"):
            self.pos += 1
            quantifier = char
        elif char == "{":
            end = self.text.find("}", self.pos)
            if end < 0:
                raise _Refused("brace")
            low, comma, high = self.text[self.pos + 1 : end].partition(",")
            if not low.isdigit() or not (high == "" or high.isdigit()) or not low.isascii() or not high.isascii():
                raise _Refused("bound")
            if int(low) > _MAX_BOUND or (high and (int(high) > _MAX_BOUND or int(high) < int(low))):
                raise _Refused("bound range")
            self.pos = end + 1
            quantifier = "{" + str(int(low)) + ("," if comma else "") + (str(int(high)) if high else "") + "}"
        else:
            return ""
        if self.peek() in ("*", "+", "?", "{"):
            raise _Refused("stacked quantifier")  # lazy, possessive or repeated: not portable
        return quantifier


@lru_cache(maxsize=4096)
def sql_regex(pattern: str) -> str | None:
    """An anchored regular expression that matches exactly the names
    `re.fullmatch(pattern.strip(), name)` matches, in PostgreSQL's `~` and in
    Python's `re.search` alike; None when the pattern is outside the accepted subset."""
    translator = _Translator(pattern.strip())
    if not translator.text:  # fullmatch of an empty pattern: the empty name only
        return "\\A\\Z"
    try:
        body = translator.alternation()
        if translator.pos != len(translator.text):
            raise _Refused("trailing text")
    except _Refused:
        return None
    return f"\\A(?:{body})\\Z"
