"""Querysets compiled once and run many times with new values (hot per-request reads).

Compiling an ORM query to SQL (joins, `select_related`, annotated subqueries) costs more
CPU than running it: for the API key lookup and a page of the invoice list it was 1.5-2 ms
of every request. `CompiledQuery(build, sentinels)` calls `build(*sentinels)` once per
database alias, compiles that queryset, and finds each sentinel among the statement's
parameters; from then on `rows()` / `objects()` run that statement with the caller's values
in the sentinels' places, and turn the rows into what the queryset would have returned
(`values()` dicts, or model instances with their `select_related` objects), through the
same database converters.

Safe by construction: a sentinel that does not appear exactly once, unchanged, among the
parameters (the ORM transformed it, or baked it into the SQL) makes the statement
uncacheable, and every call then evaluates `build(*values)` as usual. `build` must not
slice (`limit`/`offset` are arguments) and must depend on nothing but its arguments: the
statement is shared by every later call. A tenant queryset must be scoped by `build`'s own
filters (a query pinned at evaluation to the request's reseller would bake that reseller
in), so an unpinned one is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesIterable, get_related_populators


@dataclass(frozen=True)
class _Statement:
    sql: str
    params: tuple
    #: For each argument, where it goes among `params`.
    slots: tuple[int, ...]
    #: Column position -> (converters, expression), as Django's compiler applies them.
    converters: dict
    #: values(): the dict keys, in column order; model rows: None.
    names: tuple[str, ...] | None
    select: Any
    klass_info: Any


_UNCACHEABLE = object()


class CompiledQuery:
    def __init__(self, build: Callable[..., QuerySet], sentinels: Sequence[Any]) -> None:
        self.build = build
        self.sentinels = tuple(sentinels)
        self._statements: dict[str, _Statement | object] = {}

    def rows(self, *values: Any, limit: int | None = None, offset: int = 0, using=None) -> list:
        """What `build(*values)[offset:offset + limit]` evaluates to, as a list."""
        using = using or DEFAULT_DB_ALIAS
        statement = self._statements.get(using)
        if statement is None:
            statement = self._statements[using] = self._compile(using)
        if statement is _UNCACHEABLE:
            queryset = self.build(*values).using(using)
            if limit is not None:
                queryset = queryset[offset : offset + limit]
            return list(queryset)
        return self._run(statement, values, limit=limit, offset=offset, using=using)

    def _compile(self, using: str) -> _Statement | object:
        queryset = self.build(*self.sentinels)
        if getattr(queryset, "_tenant_pin", "") is None:  # accounts.tenancy: not scoped
            raise ImproperlyConfigured(
                f"CompiledQuery on {queryset.model.__name__}: scope it in `build` "
                "(a reseller filter, or Model.unscoped where every reseller is meant)"
            )
        if queryset._iterable_class not in (ModelIterable, ValuesIterable):
            return _UNCACHEABLE
        query = queryset.query
        if query.is_sliced or query.combinator:
            return _UNCACHEABLE
        compiler = query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots = []
        for sentinel in self.sentinels:
            found = [
                i
                for i, param in enumerate(params)
                if type(param) is type(sentinel) and param == sentinel
            ]
            if len(found) != 1:
                return _UNCACHEABLE
            slots.append(found[0])
        names = None
        if queryset._iterable_class is ValuesIterable:
            if query.selected:  # as ValuesIterable names the columns
                names = tuple(query.selected)
            else:
                names = (*query.extra_select, *query.values_select, *query.annotation_select)
        columns = [column for column, _sql, _alias in compiler.select]
        return _Statement(
            sql=sql,
            params=tuple(params),
            slots=tuple(slots),
            converters=compiler.get_converters(columns),
            names=names,
            select=compiler.select,
            klass_info=compiler.klass_info,
        )

    def _run(self, statement: _Statement, values, *, limit, offset, using) -> list:
        params = list(statement.params)
        for slot, value in zip(statement.slots, values, strict=True):
            params[slot] = value
        sql = statement.sql
        if limit is not None:  # the form Django writes for a slice, PostgreSQL and SQLite
            sql = f"{sql} LIMIT {int(limit)} OFFSET {int(offset)}"
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        if statement.converters:
            converters = statement.converters.items()
            rows = []
            for row in fetched:
                row = list(row)
                for position, (functions, expression) in converters:
                    value = row[position]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[position] = value
                rows.append(row)
        else:
            rows = fetched
        if statement.names is not None:
            names = statement.names
            return [dict(zip(names, row, strict=False)) for row in rows]
        return self._instances(statement, rows, using)

    def _instances(self, statement: _Statement, rows, using: str) -> list:
        """Model instances as Django's ModelIterable builds them (`select_related` too)."""
        klass_info, select = statement.klass_info, statement.select
        model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, using)
        objects = []
        for row in rows:
            obj = model.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects
