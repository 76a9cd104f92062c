"""One statement straight on the database driver's connection, for the few statements a
sync runs every time (its lock, its one write).

Django's cursor wrapper, and with DEBUG its query log, cost about as much CPU as the
driver's own round trip for a short statement (`bench/sync.py`). These helpers keep what
matters of it: the connection is opened (or reopened) as Django would, and driver errors
become Django's database exceptions (`wrap_database_errors`, which also marks the
connection for a health check). They do not appear in `connection.queries` nor pass
through `execute_wrapper` hooks. The SQL uses `%s` placeholders, as Django's cursor does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


def fetchone(sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> tuple | None:
    """Run `sql` with `params` and return its first row (None when it returned none)."""
    wrapper = connections[using]
    wrapper.ensure_connection()
    with wrapper.wrap_database_errors, wrapper.connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
