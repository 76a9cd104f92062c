"""`core.rawsql` on PostgreSQL (its only user: a sync's lock and write): one statement on the
driver's connection, its first row back."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DataError

from core import rawsql

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_fetchone_returns_the_first_row_or_none():
    assert rawsql.fetchone("SELECT 1 + %s", [2]) == (3,)
    assert rawsql.fetchone("SELECT 1 WHERE 1 = %s", [2]) is None


def test_text_with_quotes_and_placeholders_comes_back_as_sent():
    value = "it's %s; -- \\ \x1f"
    assert rawsql.fetchone("SELECT %s", [value]) == (value,)


def test_parameters_are_bound_by_the_server_typed_as_their_values():
    """Server-side binding: a small int arrives as smallint (spliced into the text it would
    be the literal `1`, an integer), a datetime as timestamptz."""
    when = dt.datetime(2026, 3, 6, tzinfo=dt.UTC)
    assert rawsql.fetchone("SELECT pg_typeof(%s)::text, pg_typeof(%s)::text", [1, when]) == (
        "smallint",
        "timestamp with time zone",
    )
    assert rawsql.fetchone("SELECT %s::timestamptz", [when]) == (when,)


def test_driver_errors_are_djangos():
    with pytest.raises(DataError):
        rawsql.fetchone("SELECT %s::int", ["x"])
