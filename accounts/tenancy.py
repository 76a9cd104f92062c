"""The one place that decides which reseller a request, task or query is for.

Every tenant-owned model declares `tenant_path`, the ORM path from it to its `Reseller`
(`"reseller"`, `"customer__reseller"`, ...), and `objects = TenantQuerySet.as_manager()`
(or a subclass's), so any code can scope a query with `Model.objects.for_reseller(reseller)`.
Selectors and services take the reseller as a required argument and fetch through it; a row
of another reseller is simply not found (404), never "forbidden".

Fail closed (PostHog's team-scoped managers, `posthog/models/scoping`): while a request is
handled (`TenancyRequestMiddleware`), every tenant query is pinned to a reseller when it is
evaluated (fetched, counted, tested for existence, aggregated, iterated, updated, deleted).
A query is pinned when it

- went through `.for_reseller(reseller)`, or filters (not excludes) on the tenant path or
  any path to a reseller (`reseller`, `reseller_id`, `customer__reseller__in`, ...);
- filters a relation by a loaded tenant object or a pinned queryset (`customer=customer`,
  `invoice__in=invoices`), or was built by Django for a loaded tenant object (its `instance`
  hint: a related manager such as `customer.invoices.all()`, a `prefetch_related`): the
  object was itself fetched pinned; a raw id (`customer_id=5`, from a URL say) does not
  count;
- is `.row_of(obj)` / `.rows_of(objs)`: the rows of objects already loaded (read again,
  locked, updated);
- is `.none()`, or comes from `Model.unscoped`.

Any other query raises `UnscopedQueryError`, naming the model: a forgotten filter is a 500
in the tests, never another reseller's rows. The request's reseller is never filled in
behind the caller's back: services and selectors take the reseller, or objects fetched
scoped, and say which rows they mean (ids they were handed are pinned with
`for_reseller(reseller)`, objects in hand with `row_of` / `rows_of`).

`Model.unscoped` (added next to `objects` by `as_manager`) is every reseller's rows, named
at each use: tasks, commands and the few request paths that are global by nature (the
platform operator's admin, finding an API key by its hash). Celery tasks and management
commands run outside request code (tasks reset the flag even when run eagerly inside a
request), so there the default manager behaves like Django's.

Django internals keep working: `objects` is the default manager (admin and DRF reach it
through the project's scoped bases), `_base_manager` stays Django's plain manager (foreign
key descriptors, `refresh_from_db`, `save()`, deletion cascades), and neither manager is used
in migrations. `Reseller` itself (`tenant_path = "pk"`) is the tenant, not enforced.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Q

# A reseller is typed `models.Model` here: accounts.models builds on this module (its models'
# `TenantQuerySet`), so this module does not import it back.


class UnscopedQueryError(RuntimeError):
    """A programming error: request code evaluated a tenant query not pinned to a reseller."""

    def __init__(self, model: type[models.Model]) -> None:
        name = model.__name__
        super().__init__(
            f"Unscoped query on {model._meta.label} in request code: scope it with "
            f"{name}.objects.for_reseller(reseller) (or filter on its {model.tenant_path}, or "
            f"go through an object fetched scoped), or use {name}.unscoped where every "
            "reseller's rows are meant."
        )
        self.model = model


# -- request code ----------------------------------------------------------------------------


_request: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flowbill_tenancy_request", default=False
)


def in_request_code() -> bool:
    """Whether tenant queries are checked here (a request is being handled)."""
    return _request.get()


@contextmanager
def request_code(*, active: bool = True) -> Iterator[None]:
    """Run the block as request code, or outside it (`active=False`: a task run eagerly
    inside a request)."""
    token = _request.set(active)
    try:
        yield
    finally:
        _request.reset(token)


class TenancyRequestMiddleware:
    """Marks the handling of each request as request code (see the module docstring)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        with request_code():
            return self.get_response(request)


def _task_prerun(task_id=None, task=None, **kwargs) -> None:
    _task_tokens[task_id] = _request.set(False)


def _task_postrun(task_id=None, task=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _request.reset(token)


_task_tokens: dict[str, contextvars.Token] = {}


def _connect_task_signals() -> None:
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_task_prerun, weak=False, dispatch_uid="flowbill-tenancy-prerun")
    task_postrun.connect(_task_postrun, weak=False, dispatch_uid="flowbill-tenancy-postrun")


_connect_task_signals()


# -- the queryset and its managers -----------------------------------------------------------

#: How a queryset is pinned: not at all (refused in request code), to one reseller, or
#: deliberately to every reseller (`Model.unscoped`).
_UNPINNED, _SCOPED, _UNSCOPED = None, "scoped", "unscoped"


class TenantQuerySet(models.QuerySet):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tenant_pin: str | None = _UNPINNED

    def for_reseller(self, reseller: models.Model | int) -> TenantQuerySet:
        reseller_id = reseller if isinstance(reseller, int) else reseller.pk
        return self.filter(**{_id_lookup(self.model.tenant_path): reseller_id})

    def row_of(self, obj: models.Model) -> TenantQuerySet:
        """The row of `obj`, an object already fetched (scoped where it was fetched): to read
        it again, lock it or update it (`Invoice.objects.select_for_update().row_of(invoice)
        .get()`)."""
        if not isinstance(obj, self.model) or obj.pk is None:
            raise TypeError(f"row_of() needs a saved {self.model.__name__}, got {obj!r}")
        return self.filter(pk=obj.pk)._pinned(_SCOPED)

    def rows_of(self, objs: Iterable[models.Model]) -> TenantQuerySet:
        """The rows of objects already fetched (`row_of` for several: to lock them, say)."""
        objs = list(objs)
        for obj in objs:
            if not isinstance(obj, self.model) or obj.pk is None:
                raise TypeError(f"rows_of() needs saved {self.model.__name__}s, got {obj!r}")
        return self.filter(pk__in=[obj.pk for obj in objs])._pinned(_SCOPED)

    @classmethod
    def as_manager(cls) -> models.Manager:
        """The default manager (`objects`, enforcing); it adds `unscoped` to the model."""
        manager = _TenantManager.from_queryset(cls)()
        manager._built_with_as_manager = True
        return manager

    # -- marking ---------------------------------------------------------------------------

    def _pinned(self, pin: str | None) -> TenantQuerySet:
        if pin is not None and self._tenant_pin is _UNPINNED:
            self._tenant_pin = pin
        return self

    def _clone(self) -> TenantQuerySet:
        clone = super()._clone()
        clone._tenant_pin = self._tenant_pin
        return clone

    def _filter_or_exclude(self, negate: bool, args: tuple, kwargs: dict) -> TenantQuerySet:
        clone = super()._filter_or_exclude(negate, args, kwargs)
        if not negate and _constrains_reseller(self.model, args, kwargs):
            clone._pinned(_SCOPED)
        return clone

    def none(self) -> TenantQuerySet:
        return super().none()._pinned(_SCOPED)

    def __and__(self, other: models.QuerySet) -> models.QuerySet:
        combined = super().__and__(other)
        if isinstance(combined, TenantQuerySet) and _pin_of(other) is not _UNPINNED:
            combined._pinned(_pin_of(other))
        return combined

    def __or__(self, other: models.QuerySet) -> models.QuerySet:
        combined = super().__or__(other)
        if isinstance(combined, TenantQuerySet) and _pin_of(other) is _UNPINNED:
            combined._tenant_pin = _UNPINNED
        return combined

    def _combinator_query(self, combinator: str, *other_qs, all: bool = False):
        combined = super()._combinator_query(combinator, *other_qs, all=all)
        if any(_pin_of(other) is _UNPINNED for other in other_qs):
            combined._tenant_pin = _UNPINNED
        return combined

    # -- enforcing -------------------------------------------------------------------------

    def _check_tenancy(self) -> None:
        """In request code, refuse a query that is not pinned to a reseller."""
        if (
            not _request.get()
            or self._tenant_pin is not _UNPINNED
            or getattr(self.model, "tenant_path", "pk") == "pk"
            or _is_pinned_value(self._hints.get("instance"))
        ):
            return
        raise UnscopedQueryError(self.model)

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._check_tenancy()
        super()._fetch_all()

    def iterator(self, chunk_size: int | None = None):
        self._check_tenancy()
        return super().iterator(chunk_size)

    def count(self) -> int:
        if self._result_cache is None:
            self._check_tenancy()
        return super().count()

    def exists(self) -> bool:
        if self._result_cache is None:
            self._check_tenancy()
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._check_tenancy()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._check_tenancy()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._check_tenancy()
        return super().delete()

    def explain(self, *args: Any, **kwargs: Any) -> str:
        self._check_tenancy()
        return super().explain(*args, **kwargs)


class _TenantManager(models.Manager):
    """`objects`: the tenant queryset, refused unscoped in request code. Contributing it to
    a model also adds `unscoped`, the same queryset deliberately spanning every reseller."""

    def contribute_to_class(self, cls: type[models.Model], name: str) -> None:
        super().contribute_to_class(cls, name)
        if name == "objects" and "unscoped" not in cls.__dict__:
            unscoped = _UnscopedManager.from_queryset(self._queryset_class)()
            cls.add_to_class("unscoped", unscoped)


class _UnscopedManager(models.Manager):
    def get_queryset(self) -> TenantQuerySet:
        return super().get_queryset()._pinned(_UNSCOPED)


def _pin_of(queryset: Any) -> str | None:
    return getattr(queryset, "_tenant_pin", _UNPINNED)


# -- what pins a filter to a reseller --------------------------------------------------------

_EQUALITY = ("exact", "in")


def _constrains_reseller(model: type[models.Model], args: Iterable, kwargs: dict) -> bool:
    """Whether these filter arguments (AND-ed together) pin `model`'s rows to resellers."""
    return any(_q_constrains(model, arg) for arg in args if isinstance(arg, Q)) or any(
        _lookup_constrains(model, key, value) for key, value in kwargs.items()
    )


def _q_constrains(model: type[models.Model], q: Q) -> bool:
    if q.negated:
        return False
    results = [
        _q_constrains(model, child)
        if isinstance(child, Q)
        else isinstance(child, tuple) and _lookup_constrains(model, *child)
        for child in q.children
    ]
    if not results:
        return False
    return any(results) if q.connector == Q.AND else all(results)


def _lookup_constrains(model: type[models.Model], key: str, value: Any) -> bool:
    parts = key.split("__")
    if len(parts) > 1 and parts[-1] in _EQUALITY:
        parts = parts[:-1]
    target = _lookup_target(model, parts)
    if target is None:
        return False
    target_model, to_reseller = target
    if to_reseller:
        return value is not None
    if not hasattr(target_model, "tenant_path"):
        return False
    return _is_pinned_value(value)


def _lookup_target(
    model: type[models.Model], parts: list[str]
) -> tuple[type[models.Model], bool] | None:
    """The model a lookup path (without its equality lookup) ends on, and whether it ends
    on a reseller's id; None for a path that ends on a plain column."""
    current = model
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "pk" or (part == "id" and current._meta.pk.attname == "id"):
            return (current, _is_reseller(current)) if last else None
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            field = next(
                (f for f in current._meta.concrete_fields if f.attname == part and f.is_relation),
                None,
            )
            if field is None or not last:
                return None
        if not field.is_relation or field.related_model is None:
            return None
        current = field.related_model
    return current, _is_reseller(current)


def _is_reseller(model: type[models.Model]) -> bool:
    return getattr(model, "tenant_path", None) == "pk"


def _is_pinned_value(value: Any) -> bool:
    """A loaded tenant object, several of them, or a pinned tenant queryset."""
    if isinstance(value, models.QuerySet):
        return _pin_of(value) is not _UNPINNED
    if isinstance(value, models.Model):
        return hasattr(value, "tenant_path") and value.pk is not None
    if isinstance(value, list | tuple | set | frozenset):
        return bool(value) and all(_is_pinned_value(item) for item in value)
    return False


def _id_lookup(path: str) -> str:
    return "pk" if path == "pk" else f"{path}_id"


# -- who a user is -------------------------------------------------------------------------


def reseller_for_user(user) -> models.Model | None:
    """The reseller whose staff `user` is, or None (superusers and anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return user.reseller


def is_platform_admin(user) -> bool:
    """Superusers see every reseller; everybody else is scoped to one."""
    return bool(getattr(user, "is_superuser", False))
