"""Entity keys as canonical strings, and the latest-wins choice inside one batch.

Canonical entity key (both stores key rows by it): the view's join keys sorted by
name, each written `name=value`, joined by ",":

    driver_id=1001
    customer_id="c-7",driver_id=1001

Values: ints in decimal, strings as JSON strings (quoted, escaped), bytes as `0x` +
hex, aware datetimes as `@` + epoch microseconds. Names cannot contain `=`, `,` or
`:` (docs/feature-repo.md), so the form is unambiguous, and the order of keys in the
caller's dict does not matter. The type is part of the key: 1001 and "1001" are
different entities, as in Feast's key serialization, so callers convert request
values to the entity's value type first. Floats, bools and None are not keys. A view
without entities has no join keys; all its rows share the key "" (Feast's dummy
entity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from .codec import to_micros


def key_value(value: Any) -> str:
    """The canonical text of one join-key value."""
    if type(value) is int:
        return str(value)
    if type(value) is str:
        return orjson.dumps(value).decode()
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise ValueError(f"{value!r} cannot be an entity key value (ints, strings, bytes or timestamps)")
    if isinstance(value, int):  # int subclasses, numpy ints via __index__ below
        return str(int(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, datetime):
        return f"@{to_micros(value)}"
    if isinstance(value, str):
        return orjson.dumps(str(value)).decode()
    index = getattr(value, "__index__", None)  # numpy integers
    if index is not None:
        return str(index())
    raise ValueError(f"{value!r} ({type(value).__name__}) cannot be an entity key value")


def encode_entity_key(join_keys: tuple[str, ...], entity: Mapping[str, Any]) -> str:
    """The canonical key of one entity given as {join key: value} (extra names ignored)."""
    try:
        if len(join_keys) == 1:
            name = join_keys[0]
            return f"{name}={key_value(entity[name])}"
        return ",".join(f"{name}={key_value(entity[name])}" for name in join_keys)
    except KeyError as missing:
        raise ValueError(f"entity key {dict(entity)!r} lacks join key {missing.args[0]!r}") from None


def encode_entity_keys(
    join_keys: tuple[str, ...], entities: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
) -> list[str]:
    """Canonical keys of many entities: a list of {join key: value} dicts, or columns
    {join key: [values]}."""
    if isinstance(entities, Mapping):
        missing = [name for name in join_keys if name not in entities]
        if missing:
            raise ValueError(f"entity key columns lack join key(s) {missing}")
        columns = [entities[name] for name in join_keys]
        if len(join_keys) == 1:
            (name,) = join_keys
            return [f"{name}={key_value(v)}" for v in columns[0]]
        return [
            ",".join(f"{name}={key_value(v)}" for name, v in zip(join_keys, values, strict=True))
            for values in zip(*columns, strict=True)
        ]
    return [encode_entity_key(join_keys, entity) for entity in entities]


def latest_per_entity(keys: Sequence[str], event_micros: Sequence[int], *, by_key: bool = False) -> list[int]:
    """Indexes of the rows to keep from one batch: per entity key the latest event
    time, and of equal times the later row in the batch. In first-seen order, or sorted
    by entity key with `by_key` (concurrent SQL writers then lock rows in one order and
    cannot deadlock)."""
    winners: dict[str, int] = {}
    for i, key in enumerate(keys):
        j = winners.get(key)
        if j is None or event_micros[i] >= event_micros[j]:
            winners[key] = i
    if by_key:
        return [winners[key] for key in sorted(winners)]
    return list(winners.values())
