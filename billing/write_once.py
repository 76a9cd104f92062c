"""Records that are written once and never changed or deleted: credit notes and their lines,
payments and refunds. The rule is in the model layer, so no service, admin or shell can
bypass it: `save()` of an existing row, `delete()`, and a queryset's `update()` or
`delete()` raise the model's error (`write_once_code`), except that the fields in
`write_once_mutable` (a credit note's stored PDF) may still be set."""

from __future__ import annotations

from typing import Any

from django.db import models

from accounts.tenancy import TenantQuerySet
from core.errors import ApplicationError


def amount_field(**kwargs: Any) -> models.DecimalField:
    """A money column of billing documents: 20 digits, 4 decimals (rounded per currency
    where it is computed)."""
    return models.DecimalField(max_digits=20, decimal_places=4, **kwargs)


class WriteOnceQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> int:
        if set(kwargs) - self.model.write_once_mutable:
            raise self.model.write_once_error()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise self.model.write_once_error()


class WriteOnce(models.Model):
    #: The error code and message of a refused change (in core.errors' catalogue).
    write_once_code: str = "immutable"
    write_once_message: str = "This record cannot be changed."
    #: Fields that may still be set after the row is written.
    write_once_mutable: frozenset[str] = frozenset()

    objects = WriteOnceQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        only_mutable = update_fields is not None and set(update_fields) <= self.write_once_mutable
        if not self._state.adding and not only_mutable:
            raise self.write_once_error()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise self.write_once_error()

    @classmethod
    def write_once_error(cls) -> ApplicationError:
        return ApplicationError(cls.write_once_code, cls.write_once_message)
