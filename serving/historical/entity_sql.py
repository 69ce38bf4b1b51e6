"""Entity rows from a SQL query (`entity_sql`), for feature views over PostgreSQL sources.

Defence in depth, three layers:

1. `check_select` parses the text with a strict rule before it goes anywhere: one
   statement (no `;` outside string literals, quoted identifiers and comments, except
   one at the very end), starting with SELECT or WITH, and no data-changing keyword
   (INSERT, UPDATE, DELETE, ...) outside literals;
2. the query runs wrapped as `SELECT * FROM (<query>) AS entity_sql LIMIT n`, which
   PostgreSQL accepts only for a single query expression (no `SELECT ... INTO`);
3. inside a READ ONLY transaction with a statement timeout (and a lock timeout),
   rolled back afterwards: whatever slipped through cannot write.

The connection uses the DSN of the views' sources (their `dsn_setting`), so the role
the operator gave that DSN bounds what the query may read: give it a read-only role.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pyarrow as pa
from django.conf import settings

from serving.offline.base import OfflineEngineError, OfflineInputError

# Words that change data or schema; inside one query they can only come from a data-changing
# CTE or SELECT ... INTO. (Other statements cannot hide inside a single SELECT at all.)
FORBIDDEN = frozenset(
    ["INSERT", "UPDATE", "DELETE", "MERGE", "INTO", "TRUNCATE", "DROP", "ALTER", "CREATE", "GRANT", "REVOKE", "COPY"]
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def _bad(message: str) -> OfflineInputError:
    return OfflineInputError(f"entity_sql: {message}")


def scan(sql: str) -> tuple[list[str], list[int]]:
    """The words outside literals and comments (upper-cased), and the offsets of `;`
    outside them. Raises for an unterminated literal or comment."""
    words: list[str] = []
    semicolons: list[int] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2  # PostgreSQL block comments nest
            while depth:
                if i >= n:
                    raise _bad("unterminated /* comment")
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in "'\"":
            escapes = c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            i += 1
            while True:
                if i >= n:
                    raise _bad(f"unterminated {'string' if c == chr(39) else 'quoted identifier'}")
                if escapes and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == c:
                    if i + 1 < n and sql[i + 1] == c:  # doubled quote
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)) and not (i and (sql[i - 1].isalnum() or sql[i - 1] in "_$")):
            tag = m.group(0)
            end = sql.find(tag, m.end())
            if end < 0:
                raise _bad(f"unterminated {tag} string")
            i = end + len(tag)
        elif c == ";":
            semicolons.append(i)
            i += 1
        elif c.isalpha() or c == "_":
            m = _WORD.match(sql, i)
            assert m is not None
            words.append(m.group(0).upper())
            i = m.end()
        else:
            i += 1
    return words, semicolons


def check_select(sql: str) -> str:
    """The query without a trailing `;` when it is one read-only SELECT (or WITH ... SELECT);
    OfflineInputError naming the problem otherwise."""
    text = sql.strip()
    if not text:
        raise _bad("the query is empty")
    words, semicolons = scan(text)
    if semicolons:
        if len(semicolons) > 1 or not _only_comments(text[semicolons[0] + 1 :]):
            raise _bad("only one statement is allowed (a ';' separates statements)")
        text = text[: semicolons[0]].rstrip()
        words, _ = scan(text)
    if not words or words[0] not in ("SELECT", "WITH"):
        first = words[0] if words else "nothing"
        raise _bad(f"the query must be a single SELECT (or WITH ... SELECT), not {first}")
    found = sorted(set(words) & FORBIDDEN)
    if found:
        raise _bad(f"only a read-only SELECT is allowed, found {', '.join(found)}")
    return text


def _only_comments(text: str) -> bool:
    stripped = re.sub(r"--[^\n]*", "", text)
    stripped = re.sub(r"/\*.*?\*/", "", stripped, flags=re.S)
    return not stripped.strip()


def resolve_dsn(dsn_setting: str) -> str:
    """The DSN a source's `dsn_setting` names: a Django setting of that name, else the
    environment variable (the same rule as the postgres engine)."""
    dsn = getattr(settings, dsn_setting, None) or os.environ.get(dsn_setting, "")
    if not dsn:
        raise OfflineEngineError(f"entity_sql: {dsn_setting} is not set: no database to run the query on")
    return str(dsn)


# PostgreSQL type OIDs -> Arrow types (the common ones; anything else arrives as text).
_OID_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1700: pa.float64(),
    25: pa.string(),
    1043: pa.string(),
    1042: pa.string(),
    19: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    17: pa.binary(),
    2950: pa.string(),
}


def _column(values: list[Any], oid: int, name: str) -> pa.Array:
    typ = _OID_TYPES.get(oid)
    if typ is None:
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if oid == 1700:
        values = [None if v is None else float(v) for v in values]
    elif oid == 2950:
        values = [None if v is None else str(v) for v in values]
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise OfflineInputError(f"entity_sql: column {name!r} could not be read: {exc}") from exc


def run_entity_sql(sql: str, dsn_setting: str, max_rows: int | None = None) -> pa.Table:
    """Run the checked query read-only against the DSN named by `dsn_setting`; the rows as Arrow.

    More than `max_rows` rows (LARDER_ENTITY_SQL_MAX_ROWS) is an input error."""
    import psycopg

    query = check_select(sql)
    limit = max_rows if max_rows is not None else settings.LARDER_ENTITY_SQL_MAX_ROWS
    timeout_ms = int(settings.LARDER_ENTITY_SQL_TIMEOUT_SECONDS * 1000)
    wrapped = f"SELECT * FROM ({query}\n) AS entity_sql LIMIT {int(limit) + 1}"  # noqa: S608 - checked above
    try:
        with psycopg.connect(resolve_dsn(dsn_setting), autocommit=False) as conn:
            conn.read_only = True
            with conn.cursor() as cur:
                cur.execute(b"SET LOCAL TIME ZONE 'UTC'")
                cur.execute(f"SET LOCAL statement_timeout = {timeout_ms}".encode())
                cur.execute(f"SET LOCAL lock_timeout = {min(timeout_ms, 10_000)}".encode())
                cur.execute(wrapped.encode())
                names = [d.name for d in cur.description or []]
                oids = [d.type_code for d in cur.description or []]
                rows = cur.fetchall()
            conn.rollback()
    except psycopg.errors.QueryCanceled as exc:
        raise OfflineInputError(
            f"entity_sql: the query ran longer than {settings.LARDER_ENTITY_SQL_TIMEOUT_SECONDS:g} s"
        ) from exc
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        raise OfflineInputError(f"entity_sql: only a read-only SELECT is allowed ({exc.diag.message_primary})") from exc
    except (psycopg.errors.SyntaxError, psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise OfflineInputError(f"entity_sql: {exc.diag.message_primary}") from exc
    except psycopg.errors.DataError as exc:
        raise OfflineInputError(f"entity_sql: {exc.diag.message_primary}") from exc
    except psycopg.errors.ProgrammingError as exc:
        raise OfflineInputError(f"entity_sql: {exc}") from exc
    except psycopg.Error as exc:
        raise OfflineEngineError(f"entity_sql: the query failed: {exc}") from exc
    if len(rows) > limit:
        raise OfflineInputError(f"entity_sql: the query returns more than {limit} rows")
    if len(set(names)) != len(names):
        raise OfflineInputError("entity_sql: the query returns two columns with the same name")
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    return pa.table(
        {name: _column(list(values), oid, name) for name, values, oid in zip(names, columns, oids, strict=True)}
    )
