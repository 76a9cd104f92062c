"""A month from stored usage to PDF and email, then a late revision on the next invoice."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core import mail
from pypdf import PdfReader

from billing.invoicing.cycle import invoice_cycle_run
from billing.models import Invoice
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import UsageDay

GIB = 1_073_741_824


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.mark.slow
def test_shanghai_month_closes_into_pdf_and_email_then_late_usage_adjusts(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai", invoice_prefix="SH")
    customer = factories.CustomerFactory(reseller=reseller, name="上海流量科技有限公司")
    customer.tax_rate = Decimal("6")
    customer.save()
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    subs = [
        factories.SubAccountFactory(customer=customer, upstream_account=upstream) for _ in range(2)
    ]
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    for sa in subs:  # 2 x 31 x 2 GiB = 124 GiB: 10.00 + 24 x 2.50 = 70.00, tax 4.20
        add_usage(sa, dt.date(2026, 10, 1), 31, 2)

    # 2026-10-31 16:00Z is midnight in Shanghai: October is over there.
    with django_capture_on_commit_callbacks(execute=True):
        invoice_cycle_run(reseller=reseller, now=dt.datetime(2026, 10, 31, 17, tzinfo=dt.UTC))
        assert Invoice.objects.get().status == "draft"
        invoice_cycle_run(reseller=reseller, now=dt.datetime(2026, 11, 2, 16, tzinfo=dt.UTC))
    october = Invoice.objects.get()
    assert (october.status, october.number, october.total) == (
        "finalized",
        "SH-2026-00001",
        Decimal("74.20"),
    )
    with october.pdf.open("rb") as fh:
        text = _pdf_text(fh.read())
    assert "SH-2026-00001" in text and "74.20" in text and "上海流量科技有限公司" in text
    assert "1,073,741,824" in text
    assert len(mail.outbox) == 1
    assert mail.outbox[0].attachments[0][1].startswith(b"%PDF")

    # The upstream revises October 31st of one sub-account from 2 to 6 GiB: +4 x 2.50.
    UsageDay.objects.filter(sub_account=subs[0], day=dt.date(2026, 10, 31)).update(bytes=6 * GIB)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_cycle_run(reseller=reseller, now=dt.datetime(2026, 12, 2, 16, tzinfo=dt.UTC))
    november = Invoice.objects.get(period_start=dt.date(2026, 11, 1))
    adjustment = november.lines.get(kind="adjustment")
    assert (adjustment.amount, adjustment.adjusts_invoice_id) == (Decimal("10.00"), october.pk)
    assert november.subtotal == Decimal("20.00")  # base 10.00 + the adjustment
    with november.pdf.open("rb") as fh:
        assert "Adjustment for SH-2026-00001" in _pdf_text(fh.read())
    assert len(mail.outbox) == 2
