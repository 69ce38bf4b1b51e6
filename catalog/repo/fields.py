"""Reading one YAML object field by field, collecting every problem with its field name.

`ObjectReader` is the small helper each normaliser uses: it knows the object (type,
name, file), refuses unknown keys (a typo must not silently pass), and turns loose
YAML values into the exact shapes stored in the registry.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from catalog.models.types import DTYPES

from .errors import ValidationIssue

# Object, feature and join-key names: they appear in URLs, feature references
# (`view:feature`) and expressions, so no spaces, slashes or colons.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
NAME_RULE = "use letters, digits, '_', '.' and '-' (no spaces, '/' or ':'), starting with a letter, digit or '_'"

_TTL_PART = re.compile(r"(\d+)([smhdw])")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_TTL_SECONDS = 100 * 365 * 86400


def parse_ttl(value: Any) -> int:
    """Seconds in `value`: an integer, or `90s` / `15m` / `2h` / `1d` / `1w` (combinable: `1d12h`)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"bad ttl {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            seconds = int(text)
        elif text and _TTL_PART.sub("", text) == "":
            seconds = sum(int(n) * _TTL_UNITS[u] for n, u in _TTL_PART.findall(text))
        else:
            raise ValueError(f"bad ttl {value!r}: use seconds or a duration like 90s, 15m, 2h, 1d, 1w (0 = unlimited)")
    else:
        raise ValueError(f"bad ttl {value!r}: use seconds or a duration like 90s, 15m, 2h, 1d, 1w")
    if seconds < 0:
        raise ValueError(f"bad ttl {value!r}: must not be negative")
    if seconds > MAX_TTL_SECONDS:
        raise ValueError(f"bad ttl {value!r}: longer than 100 years")
    return seconds


def suggest(word: str, choices: Iterable[str]) -> str:
    """`(did you mean 'x'?)` for a near miss, else an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class ObjectReader:
    """Reads the fields of one raw object and records problems in `errors`."""

    def __init__(
        self, object_type: str, raw: dict[str, Any], file: str, errors: list[ValidationIssue], prefix: str = ""
    ):
        self.object_type = object_type
        self.prefix = prefix
        self.raw = raw
        self.file = file
        self.errors = errors
        self.name = raw.get("name") if isinstance(raw.get("name"), str) else ""
        self.failed = False

    def error(self, field: str, message: str) -> None:
        self.failed = True
        self.errors.append(ValidationIssue(self.file, self.object_type, self.name, self.prefix + field, message))

    def only(self, allowed: Iterable[str], context: str = "") -> None:
        """Report every key not in `allowed` (typos must not silently pass)."""
        allowed = list(allowed)
        for key in self.raw:
            if key not in allowed:
                where = f" for {context}" if context else ""
                self.error(str(key), f"unknown field{where}{suggest(key, allowed)}; allowed: {', '.join(allowed)}")

    def name_field(self) -> str:
        value = self.raw.get("name")
        if value is None or value == "":
            self.error("name", "name is required")
            return ""
        if not isinstance(value, str) or not NAME_RE.match(value):
            self.error("name", f"bad name {value!r}: {NAME_RULE}")
            return ""
        return value

    def string(self, key: str, default: str = "", required: bool = False) -> str:
        value = self.raw.get(key)
        if value is None or value == "":
            if required:
                self.error(key, f"{key} is required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(key, f"must be a string, got {type(value).__name__}")
            return default
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.error(key, f"must be true or false, got {value!r}")
            return default
        return value

    def string_list(self, key: str, default: list[str] | None = None, names: bool = False) -> list[str]:
        """A list of strings (a lone string is accepted as a one-item list); `names`
        checks each against the name rule."""
        value = self.raw.get(key)
        if value is None:
            return list(default or [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or any(not isinstance(v, str) or not v for v in value):
            self.error(key, f"must be a list of non-empty strings, got {value!r}")
            return list(default or [])
        if names:
            for item in value:
                if not NAME_RE.match(item):
                    self.error(key, f"bad name {item!r}: {NAME_RULE}")
        if len(set(value)) != len(value):
            dupes = sorted({v for v in value if value.count(v) > 1})
            self.error(key, f"lists {', '.join(dupes)} more than once")
        return list(value)

    def str_mapping(self, key: str) -> dict[str, str]:
        """A mapping of string to string (tags, field_mapping); scalar values become strings."""
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(key, f"must be a mapping, got {type(value).__name__}")
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, dict | list) or v is None:
                self.error(key, f"value of {k!r} must be a string, got {v!r}")
                continue
            out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def common(self) -> dict[str, Any]:
        """description, owner and tags, which every object has."""
        return {
            "description": self.string("description"),
            "owner": self.string("owner"),
            "tags": self.str_mapping("tags"),
        }

    def dtype(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or value.replace(" ", "") not in DTYPES:
            self.error(key, f"bad dtype {value!r}{suggest(value, DTYPES)} (expected one of {', '.join(DTYPES)})")
            return ""
        return value.replace(" ", "")

    def schema(self, key: str = "schema", required: bool = True) -> list[dict[str, Any]]:
        """A list of {name, dtype, description, tags}, names unique."""
        value = self.raw.get(key)
        if value is None or value == []:
            if required:
                self.error(key, f"{key} must list at least one field")
            return []
        if not isinstance(value, list):
            self.error(key, f"must be a list of fields, got {type(value).__name__}")
            return []
        fields: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.error(f"{key}[{i}]", f"must be a mapping with name and dtype, got {item!r}")
                continue
            name = item.get("name")
            good_name = isinstance(name, str) and bool(NAME_RE.match(name))
            sub = ObjectReader(
                self.object_type,
                item,
                self.file,
                self.errors,
                prefix=f"{self.prefix}{key}.{name}." if good_name else f"{self.prefix}{key}[{i}].",
            )
            sub.name = self.name
            sub.only(["name", "dtype", "description", "tags"])
            if not good_name:
                sub.error("name", f"bad field name {name!r}: {NAME_RULE}")
            elif name in seen:
                sub.error("name", f"field {name!r} is listed more than once")
            dtype = sub.dtype("dtype", item.get("dtype")) if "dtype" in item else ""
            if "dtype" not in item:
                sub.error("dtype", "dtype is required")
            field_def = {
                "name": name,
                "dtype": dtype,
                "description": sub.string("description"),
                "tags": sub.str_mapping("tags"),
            }
            self.failed = self.failed or sub.failed
            if good_name:
                seen.add(name)
                fields.append(field_def)
        return fields
