"""Read and advance the access epoch (access.models.AccessEpoch).

Raw SQL on purpose: `current()` runs on every API request, and compiling an ORM query
would cost more than running it.
"""

from django.db import connection, transaction

from .models import AccessEpoch

ROW_ID = 1
_TABLE = AccessEpoch._meta.db_table
CURRENT_SQL = f"SELECT value FROM {_TABLE} WHERE id = {ROW_ID}"  # noqa: S608 - constants only
_BUMP_SQL = f"UPDATE {_TABLE} SET value = value + 1 WHERE id = {ROW_ID}"  # noqa: S608 - constants only


def current() -> int:
    """The epoch now (0 before the first bump)."""
    with connection.cursor() as cursor:
        cursor.execute(CURRENT_SQL)
        row = cursor.fetchone()
    return 0 if row is None else row[0]


def bump() -> None:
    """Advance the epoch in the caller's transaction: other processes see the new value
    together with the change that caused it, never before."""
    with connection.cursor() as cursor:
        cursor.execute(_BUMP_SQL)
        if cursor.rowcount:
            return
    with transaction.atomic():
        row, created = AccessEpoch.objects.select_for_update().get_or_create(pk=ROW_ID, defaults={"value": 1})
        if not created:
            AccessEpoch.objects.filter(pk=ROW_ID).update(value=row.value + 1)
