"""Statements written directly instead of compiled by the ORM each time, for the rows a
sync writes on every run (`bench/sync.py` measured the compiling at a third of a sync's CPU).
Table and column names come from the models, never from input."""

from __future__ import annotations

from functools import lru_cache

from django.db import connection
from django.db.models import Field, Model

UPSERT_BATCH = 400


def upsert_rows(
    *,
    table: str,
    columns: list[str],
    conflict: list[str],
    update: list[str],
    rows: list[tuple],
    pg_types: list[str] | None = None,
) -> None:
    """`INSERT ... ON CONFLICT (unique columns) DO UPDATE` for many rows in one statement.

    The statement `bulk_create(update_conflicts=True, unique_fields=..., update_fields=...)`
    emits, on SQLite and PostgreSQL alike, written directly: compiling it through the ORM
    was a third of the CPU time of a sync in `bench/sync.py`. Values must be adapted for
    the database already (`connection.ops.adapt_*`). Table and column names come from code,
    never from input.
    """
    qn = connection.ops.quote_name
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    head = f"INSERT INTO {qn(table)} ({', '.join(qn(c) for c in columns)}) VALUES "  # noqa: S608
    tail = f" ON CONFLICT ({', '.join(qn(c) for c in conflict)}) DO UPDATE SET " + ", ".join(
        f"{qn(c)} = excluded.{qn(c)}" for c in update
    )
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), UPSERT_BATCH):
            chunk = rows[offset : offset + UPSERT_BATCH]
            cursor.execute(
                head + ", ".join([one] * len(chunk)) + tail,
                [value for row in chunk for value in row],
            )


@lru_cache(maxsize=32)
def _insert_statement(model: type[Model], vendor: str) -> tuple[str, list[Field]]:
    # `vendor` is part of the cache key, as in `_adapt_datetime`.
    qn = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {qn(model._meta.pk.column)}"
    )
    return sql, fields


def row_insert(instance: Model) -> Model:
    """Insert a new `instance` (as `save(force_insert=True)` would, pre_save included:
    auto_now stamps) with a statement built once per model, and set its primary key.
    Sends no `pre_save`/`post_save` signals: for the rows a sync writes every time (its
    SyncRun), which have no receivers; compiling the ORM's INSERT was a tenth of a sync's
    CPU (`bench/sync.py`)."""
    sql, fields = _insert_statement(type(instance), connection.vendor)
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
