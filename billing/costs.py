"""Upstream cost: what the traffic a reseller sold cost it upstream.

`UpstreamAccount.cost_per_gb` is the price of one GB *as the upstream counts it*. Upstreams
that report MB define their MB by `mb_bytes` (1,048,576 by default, or 1,000,000), and their
GB is 1024 such MB when the MB is binary (1 GB = 2^30 bytes) and 1000 when it is decimal
(1 GB = 10^9 bytes). So cost = bytes / upstream GB bytes x cost per GB, kept exact and
rounded once per (customer, upstream account) cell to the reseller's currency; every total
is a sum of rounded cells. Upstream cost is in the reseller's currency.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from accounts.models import MIB, UpstreamAccount
from billing.money import quantize_money


def upstream_gb_bytes(*, mb_bytes: int) -> int:
    """Bytes in one upstream GB: 1024 binary MB (2^30) or 1000 decimal MB (10^9)."""
    return mb_bytes * 1024 if mb_bytes == MIB else mb_bytes * 1000


def upstream_cost(*, nbytes: int, upstream: UpstreamAccount, currency: str) -> Decimal:
    """Cost of `nbytes` on `upstream`, rounded once to `currency`, half up."""
    with localcontext(prec=100):
        exact = (
            Decimal(nbytes)
            * upstream.cost_per_gb
            / Decimal(upstream_gb_bytes(mb_bytes=upstream.mb_bytes))
        )
    return quantize_money(exact, currency)
