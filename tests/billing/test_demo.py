import datetime as dt
from io import StringIO

from django.core import mail

from accounts.demo import demo_seed
from billing.demo import demo_close_last_month
from billing.models import Invoice, Subscription

NOW = dt.datetime(2026, 11, 2, 3, tzinfo=dt.UTC)


def test_demo_closes_last_month_once_with_pdfs_and_emails(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    demo = demo_seed(stdout=StringIO())
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        demo_close_last_month(reseller=demo.reseller, now=NOW, stdout=out)
    invoices = list(Invoice.objects.filter(reseller=demo.reseller))
    assert len(invoices) == len(demo.customers)
    assert all(i.status == "finalized" and i.pdf for i in invoices)
    assert all(i.period_start == dt.date(2026, 10, 1) for i in invoices)
    assert len(mail.outbox) == len(invoices)
    assert "DEMO-2026-00001" in out.getvalue()
    subscriptions = Subscription.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        demo_close_last_month(reseller=demo.reseller, now=NOW, stdout=StringIO())
    assert Invoice.objects.count() == len(invoices)
    assert Subscription.objects.count() == subscriptions
    assert len(mail.outbox) == len(invoices)
