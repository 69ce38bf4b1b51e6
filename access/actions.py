"""The actions a permission grants, with Feast's names and YAML shorthands."""

from enum import StrEnum


class Action(StrEnum):
    CREATE = "CREATE"
    DESCRIBE = "DESCRIBE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    READ_ONLINE = "READ_ONLINE"
    READ_OFFLINE = "READ_OFFLINE"
    WRITE_ONLINE = "WRITE_ONLINE"
    WRITE_OFFLINE = "WRITE_OFFLINE"


ALL_ACTIONS = [a.value for a in Action]

# Feast's groupings (permissions/action.py); they are lists, not actions of their own.
SHORTHANDS: dict[str, list[str]] = {
    "READ": [Action.READ_OFFLINE.value, Action.READ_ONLINE.value],
    "WRITE": [Action.WRITE_OFFLINE.value, Action.WRITE_ONLINE.value],
    "CRUD": [Action.CREATE.value, Action.DESCRIBE.value, Action.UPDATE.value, Action.DELETE.value],
    "ALL": ALL_ACTIONS,
}


def expand_actions(names: list[str]) -> list[str]:
    """Expand shorthands and normalise case; raise ValueError naming an unknown action.

    The result keeps the canonical order of ALL_ACTIONS so stored lists diff cleanly.
    """
    wanted: set[str] = set()
    for raw in names:
        name = str(raw).strip().upper()
        if name in SHORTHANDS:
            wanted.update(SHORTHANDS[name])
        elif name in ALL_ACTIONS:
            wanted.add(name)
        else:
            choices = ", ".join(ALL_ACTIONS + list(SHORTHANDS))
            raise ValueError(f"unknown action {raw!r} (expected one of {choices})")
    return [a for a in ALL_ACTIONS if a in wanted]
