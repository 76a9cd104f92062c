"""Display text for admin pages: traffic in GB (2^30 bytes, the billing default)."""

from __future__ import annotations

from decimal import Decimal, localcontext

GIB = 1_073_741_824


def gb(nbytes: int) -> Decimal:
    """Exact GB (2^30 bytes) of a byte count, for charts and display only."""
    with localcontext(prec=50):
        return Decimal(nbytes) / Decimal(GIB)


def gb_text(nbytes: int | None) -> str:
    """1,610,612,736 -> "1.50 GB"; 0 -> "0 GB"; large figures with fewer decimals."""
    if nbytes is None:
        return "-"
    if nbytes == 0:
        return "0 GB"
    value = gb(nbytes)
    if abs(value) >= 1000:
        return f"{value:,.0f} GB"
    if abs(value) >= 10:
        return f"{value:,.1f} GB"
    return f"{value:,.2f} GB"
