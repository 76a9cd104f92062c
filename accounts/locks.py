"""Row locks on accounts that services of several apps take, in one order everywhere.

`lock_customers` is the lock invoicing takes to issue a customer's invoices
(`billing.invoicing`), and the one a sub-account's move or close takes on its holders
(`accounts.sub_accounts`): either the invoice is issued first or the change is seen by it.
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Customer


def lock_customers(customers: QuerySet[Customer]) -> None:
    """One issuing per customer at a time (id order: overlapping runs never deadlock).
    `customers`: a scoped queryset of them (`Customer.objects.rows_of(fetched)`, say).

    NO KEY UPDATE: excludes other issuings and finalizations of these customers, but not rows
    being inserted that merely reference them (a draft created meanwhile by the cycle checks
    its foreign key with KEY SHARE; FOR UPDATE would deadlock with it on the invoice's unique
    index)."""
    list(customers.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))
