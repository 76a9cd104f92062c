import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import Invoice
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

PAST = dt.date(2025, 1, 1)


@pytest.fixture
def subscribed(reseller, customer, sub_account, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller), starts_on=PAST)
    add_usage(sub_account, PAST, 31, 5)
    this_month = timezone.now().date().replace(day=1)
    add_usage(sub_account, this_month, 1, 200)
    return customer


def _run(*args) -> str:
    out = StringIO()
    call_command("generate_invoices", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_generate_and_finalize_an_ended_month(subscribed):
    out = _run("--period", "2025-01", "--finalize")
    assert "1 finalized" in out
    invoice = Invoice.objects.get()
    assert invoice.status == "finalized" and invoice.pdf


def test_running_twice_creates_nothing_new(subscribed):
    _run("--period", "2025-01", "--finalize")
    out = _run("--period", "2025-01", "--finalize")
    assert "0 finalized, 1 already issued" in out
    assert Invoice.objects.count() == 1


def test_current_month_is_a_preview_that_saves_nothing(subscribed):
    month = timezone.now().strftime("%Y-%m")
    out = _run("--period", month, "--customer", str(subscribed.pk))
    assert "PREVIEW" in out and "$260.00" in out  # 10.00 + 100 GB x 0 + 100 GB x 2.50
    assert Invoice.objects.count() == 0
    with pytest.raises(CommandError, match="still open"):
        _run("--period", month, "--finalize")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2025-13"], "YYYY-MM"),
        (["--period", "2025-01", "--customer", "999999"], "No customer"),
        (["--period", "2999-01"], "not started"),
    ],
)
def test_bad_arguments_give_clear_errors(subscribed, args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)


def test_drafts_then_finalize_due_invoices_issues_them(subscribed):
    assert "1 created" in _run("--period", "2025-01")
    assert Invoice.objects.get().status == "draft"
    out = StringIO()
    call_command("finalize_due_invoices", stdout=out)
    assert "1 finalized" in out.getvalue()
