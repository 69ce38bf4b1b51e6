"""Search result helpers: marking the query's words in names and descriptions."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

MAX_DESCRIPTION = 240


@register.filter
def highlight(text: str, words: list[str]) -> SafeString:
    """`text`, escaped, with every occurrence of a query word wrapped in <mark>.

    Words are matched case-insensitively anywhere in the text (the ranking matches
    word prefixes and name substrings, so both are marked)."""
    text = str(text or "")
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1] + "…"
    wanted = sorted({w for w in words or [] if w}, key=len, reverse=True)
    if not wanted:
        return mark_safe(escape(text))  # noqa: S308 - escaped just now
    pattern = re.compile("|".join(re.escape(w) for w in wanted), re.IGNORECASE)
    pieces, last = [], 0
    for match in pattern.finditer(text):
        pieces += [escape(text[last : match.start()]), f"<mark>{escape(match.group(0))}</mark>"]
        last = match.end()
    pieces.append(escape(text[last:]))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece escaped
