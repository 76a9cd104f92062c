"""One statement straight on the database driver's connection, for the few statements a
sync runs every time (its lock, its one write).

Django's cursor wrapper, and with DEBUG its query log, cost about as much CPU as the
driver's own round trip for a short statement (`bench/sync.py`). These helpers keep what
matters of it: the connection is opened (or reopened) as Django would, and driver errors
become Django's database exceptions (`wrap_database_errors`, which also marks the
connection for a health check). They do not appear in `connection.queries` nor pass
through `execute_wrapper` hooks. The SQL uses `%s` placeholders, as Django's cursor does.

On psycopg 3 the parameters travel apart from the statement (server-side binding, psycopg's
plain `Cursor`) instead of being quoted into its text as Django's client-side cursor does:
the long constant statement is sent as it is, without escaping and splicing every value
into it (a sync's write is 4,000 characters with 35 values). Parameters are then typed
as their Python values (an int as an integer, a datetime as timestamptz, text as unknown),
so a statement states any cast the database cannot infer.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


def fetchone(sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> tuple | None:
    """Run `sql` with `params` and return its first row (None when it returned none)."""
    wrapper = connections[using]
    wrapper.ensure_connection()
    raw = wrapper.connection
    server_binding = _server_binding_cursor() if wrapper.vendor == "postgresql" else None
    with (
        wrapper.wrap_database_errors,
        raw.cursor() if server_binding is None else server_binding(raw) as cursor,
    ):
        cursor.execute(sql, params)
        return cursor.fetchone()


@cache
def _server_binding_cursor():
    """psycopg 3's plain `Cursor` class (psycopg2 has none: its cursor is used as it is)."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return None
    import psycopg

    return psycopg.Cursor
