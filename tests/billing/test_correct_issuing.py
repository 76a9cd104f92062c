"""Issue 17 item 6, billing side: nothing billable is never numbered, a month before the
customer existed is refused, drafts follow subscription changes, voiding tells the customer
once, and the reissued invoice names the one it replaces (API: tests/api/test_issuing_api.py).
"""

import datetime as dt
import io
from decimal import Decimal
from io import StringIO

import pypdf
import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from accounts.models import Customer
from billing.invoicing.cycle import (
    invoice_create_draft,
    invoice_cycle_run,
    invoice_draft_stale,
    invoices_generate_for_period,
)
from billing.invoicing.delivery import invoice_pdf_content
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.generate import invoices_generate
from billing.invoicing.issuing import invoice_issue, invoice_reissue, invoices_issue_for_period
from billing.invoicing.periods import Period
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceEmail, InvoiceEvent, InvoiceSequence
from billing.plans import subscription_create, subscription_delete, subscription_update
from billing.tasks import invoice_email_send_task
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

OCT, NOV = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
CREATED_IN_SEPTEMBER = dt.datetime(2026, 9, 15, 9, tzinfo=dt.UTC)


def _created(customer: Customer, at: dt.datetime) -> Customer:
    """`created_at` is set on insert (auto_now_add): backdate it like an older customer."""
    Customer.objects.filter(pk=customer.pk).update(created_at=at)
    customer.refresh_from_db()
    return customer


def _nothing_numbered():
    assert not Invoice.objects.exists()
    assert not InvoiceSequence.objects.exists()  # no number was taken
    assert mail.outbox == []


@pytest.fixture
def idle(reseller, settings, tmp_path):
    """A customer since September with no subscription and no usage."""
    settings.MEDIA_ROOT = tmp_path
    return _created(factories.CustomerFactory(reseller=reseller), CREATED_IN_SEPTEMBER)


# --- nothing billable, nothing numbered ----------------------------------------------------


def test_issuing_a_month_skips_a_customer_with_nothing_billable(idle):
    result = invoices_issue_for_period(
        reseller=idle.reseller, period_start=OCT, now=AFTER_OCTOBER, customers=[idle]
    )
    assert (result.issued, result.failed) == ([], [])
    assert [(s.customer_id, s.code) for s in result.skipped] == [(idle.pk, "nothing_billable")]
    _nothing_numbered()


def test_issuing_one_customer_with_nothing_billable_is_refused(idle):
    with pytest.raises(ApplicationError) as caught:
        invoice_issue(customer=idle, period_start=OCT, now=AFTER_OCTOBER)
    assert caught.value.code == "nothing_billable"
    _nothing_numbered()


def test_no_draft_is_created_for_a_named_customer_with_nothing_billable(idle):
    with pytest.raises(ApplicationError) as caught:
        invoice_create_draft(customer=idle, period_start=OCT, now=AFTER_OCTOBER)
    assert caught.value.code == "nothing_billable"
    result = invoices_generate_for_period(
        reseller=idle.reseller, period_start=OCT, now=AFTER_OCTOBER, customer=idle
    )
    assert (result.created, result.failed) == ([], [])
    assert [(s.customer_id, s.code) for s in result.skipped] == [(idle.pk, "nothing_billable")]
    _nothing_numbered()


@pytest.mark.parametrize("month", [dt.date(2026, 8, 1), dt.date(1970, 1, 1)])
def test_a_month_before_the_customer_was_created_is_refused(idle, month):
    """The customer was created on 15 September: August and 1970-01 are before it."""
    for finalize in (False, True):
        with pytest.raises(ApplicationError) as caught:
            invoices_generate(
                reseller=idle.reseller,
                period=Period.starting(month),
                now=AFTER_OCTOBER,
                customer=idle,
                finalize=finalize,
            )
        assert caught.value.code == "period_before_customer"
        assert "created in 2026-09" in caught.value.message
    _nothing_numbered()


def test_the_month_the_customer_was_created_in_is_not_before_it(idle):
    generated = invoices_generate(
        reseller=idle.reseller,
        period=Period.starting(dt.date(2026, 9, 1)),
        now=AFTER_OCTOBER,
        customer=idle,
        finalize=True,
    )
    assert [s.code for s in generated.skipped] == ["nothing_billable"]  # skipped, not refused


def test_the_creation_month_is_read_in_the_resellers_timezone(reseller, settings, tmp_path):
    """Created 30 Sep 22:00 UTC = 1 Oct 06:00 in Shanghai: September is before it there."""
    settings.MEDIA_ROOT = tmp_path
    reseller.timezone = "Asia/Shanghai"
    reseller.save()
    late = _created(
        factories.CustomerFactory(reseller=reseller), dt.datetime(2026, 9, 30, 22, tzinfo=dt.UTC)
    )
    with pytest.raises(ApplicationError) as caught:
        invoices_generate(
            reseller=reseller,
            period=Period.starting(dt.date(2026, 9, 1)),
            now=AFTER_OCTOBER,
            customer=late,
        )
    assert caught.value.code == "period_before_customer"


def test_a_backdated_subscription_is_billed_before_the_customer_was_created(
    reseller, sub_account, settings, tmp_path
):
    """Created in December, subscribed from October (history moved from another system):
    October has something to bill, so it is billed, not refused."""
    settings.MEDIA_ROOT = tmp_path
    customer = _created(sub_account.customer, dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller), starts_on=OCT)
    add_usage(sub_account, OCT, 31, 5)
    generated = invoices_generate(
        reseller=reseller,
        period=Period.starting(OCT),
        now=AFTER_OCTOBER + dt.timedelta(days=30),
        customer=customer,
        finalize=True,
    )
    (invoice,) = Invoice.objects.filter(pk__in=generated.invoice_ids)
    assert (invoice.status, invoice.total) == ("finalized", Decimal("147.50"))


def test_after_its_subscription_is_deleted_generate_makes_no_zero_draft(
    reseller, customer, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    customer = _created(customer, CREATED_IN_SEPTEMBER)
    subscription = SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    draft, _ = invoice_create_draft(customer=customer, period_start=OCT, now=AFTER_OCTOBER)
    assert draft.total == Decimal("10.00")  # the base fee, no usage
    subscription_delete(subscription=subscription, actor="staff", now=AFTER_OCTOBER)
    assert not Invoice.objects.exists()  # its draft went with it
    result = invoices_generate_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, customer=customer
    )
    assert (result.created, [s.code for s in result.skipped]) == ([], ["nothing_billable"])
    assert not Invoice.objects.exists()


def test_finalizing_a_draft_left_with_nothing_billable_is_refused_unnumbered(
    reseller, customer, settings, tmp_path
):
    """A draft whose subscription was moved out of the month behind the services' back:
    finalizing it would number a zero invoice, so it is refused and stays a draft."""
    settings.MEDIA_ROOT = tmp_path
    subscription = SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    draft, _ = invoice_create_draft(customer=customer, period_start=OCT, now=AFTER_OCTOBER)
    type(subscription).objects.filter(pk=subscription.pk).update(starts_on=NOV)
    with pytest.raises(ApplicationError) as caught:
        invoice_finalize(invoice=draft, now=AFTER_OCTOBER)
    assert caught.value.code == "nothing_billable"
    draft.refresh_from_db()
    assert (draft.status, draft.number) == ("draft", None)
    assert not InvoiceSequence.objects.exists() and mail.outbox == []


def test_issuing_the_month_discards_a_draft_left_with_nothing_billable(
    reseller, customer, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    customer = _created(customer, CREATED_IN_SEPTEMBER)
    subscription = SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    invoice_create_draft(customer=customer, period_start=OCT, now=AFTER_OCTOBER)
    type(subscription).objects.filter(pk=subscription.pk).update(starts_on=NOV)
    result = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, customers=[customer]
    )
    assert [s.code for s in result.skipped] == ["nothing_billable"] and result.issued == []
    _nothing_numbered()


def test_generate_invoices_command_lists_skipped_customers_and_refuses_before_creation(idle):
    out = StringIO()
    call_command(
        "generate_invoices",
        "--period",
        "2026-10",
        "--customer",
        str(idle.pk),
        "--finalize",
        "--no-progress",
        stdout=out,
    )
    assert f"customer {idle.pk}: skipped: Customer {idle.pk} has no subscription" in out.getvalue()
    assert "1 with nothing billable, 0 failed" in out.getvalue()
    with pytest.raises(CommandError, match="period_before_customer"):
        call_command(
            "generate_invoices",
            "--period",
            "1970-01",
            "--customer",
            str(idle.pk),
            "--finalize",
            "--no-progress",
            stdout=StringIO(),
        )
    _nothing_numbered()


# --- drafts follow subscription changes ------------------------------------------------------


@pytest.fixture
def drafted(reseller, customer, sub_account, settings, tmp_path):
    """October's draft on plan A: 10.00 + 155 GiB (100 free, 55 x 2.50) = 147.50."""
    settings.MEDIA_ROOT = tmp_path
    plan_a = PlanFactory(reseller=reseller, code="plan-a")
    subscription = subscription_create(customer=customer, plan=plan_a, starts_on=OCT)
    add_usage(sub_account, OCT, 31, 5)
    draft, _ = invoice_create_draft(customer=customer, period_start=OCT, now=AFTER_OCTOBER)
    assert draft.total == Decimal("147.50")
    return draft, subscription


def test_cancelling_and_subscribing_again_re_rates_the_draft(drafted, reseller, customer):
    draft, subscription = drafted
    flat = PlanFactory(
        reseller=reseller, code="flat-400", base_fee=Decimal("400"), tiers=[(None, Decimal("0"))]
    )
    subscription_update(subscription=subscription, ends_on=subscription.starts_on)
    draft.refresh_from_db()
    assert draft.total == Decimal("0.00")  # only the usage is left, unbilled
    assert list(draft.usage.values_list("subscription_id", flat=True)) == [None]

    subscription_create(customer=customer, plan=flat, starts_on=OCT)
    draft.refresh_from_db()
    assert draft.total == Decimal("400.00")
    assert {line.group.split(" - ")[0] for line in draft.lines.all()} == {flat.name}
    assert invoice_draft_stale(invoice=draft) is False
    issued = invoice_finalize(invoice=draft, now=AFTER_OCTOBER, send_email=False)
    assert issued.total == Decimal("400.00")


def test_cancelling_the_only_subscription_of_a_customer_without_usage_discards_its_draft(
    reseller, customer, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    subscription = subscription_create(
        customer=customer, plan=PlanFactory(reseller=reseller), starts_on=OCT
    )
    invoice_create_draft(customer=customer, period_start=OCT, now=AFTER_OCTOBER)
    subscription_update(subscription=subscription, ends_on=OCT, now=AFTER_OCTOBER)
    assert not Invoice.objects.exists()


def test_a_draft_past_its_grace_period_is_re_rated_too(drafted, customer):
    draft, subscription = drafted
    subscription_update(
        subscription=subscription,
        ends_on=dt.date(2026, 10, 16),
        now=AFTER_OCTOBER + dt.timedelta(days=10),
    )
    draft.refresh_from_db()
    # 15 of 31 days: base fee 10.00 x 15/31 = 4.84; the 75 GiB of those days are in the free
    # 100 GB tier, the rest of the month is unbilled
    assert draft.total == Decimal("4.84")


def test_a_draft_whose_tax_rate_changed_behind_it_is_stale_until_refreshed(drafted, customer):
    draft, _ = drafted
    assert invoice_draft_stale(invoice=draft) is False
    Customer.objects.filter(pk=customer.pk).update(tax_rate=Decimal("20"))
    assert invoice_draft_stale(invoice=Invoice.objects.get(pk=draft.pk)) is True
    invoices_generate_for_period(
        reseller=customer.reseller, period_start=OCT, now=AFTER_OCTOBER, customer=customer
    )
    fresh = Invoice.objects.get(pk=draft.pk)
    assert (fresh.total, invoice_draft_stale(invoice=fresh)) == (Decimal("177.00"), False)


# --- void notice, reissue "Replaces" ----------------------------------------------------------


@pytest.fixture
def issued(drafted, customer, django_capture_on_commit_callbacks):
    customer.cc_emails = "ap@example.com"
    customer.save()
    draft, _ = drafted
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_finalize(invoice=draft, now=AFTER_OCTOBER)
    mail.outbox.clear()  # the invoice email itself
    return invoice


def test_voiding_emails_the_customer_a_void_notice_once(
    issued, customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice_void(invoice=issued, now=AFTER_OCTOBER, reason="wrong plan", actor="staff")
    (message,) = mail.outbox
    assert (message.to, message.cc) == ([customer.email], ["ap@example.com"])
    assert message.subject == (
        f"Invoice {issued.number} from {issued.reseller.name} is void \u2014 USD 147.50 not due"
    )
    assert f"has voided invoice {issued.number}. You do not owe it" in message.body
    assert "wrong plan" not in message.body  # the reason is staff's, not the customer's
    assert message.attachments == []
    (notice,) = InvoiceEmail.objects.filter(invoice=issued, kind="void_notice")
    assert (notice.status, notice.sequence, notice.attempts) == ("sent", 2, 1)
    # a task delivered again, or a second void, sends nothing more
    invoice_email_send_task.apply(args=[notice.pk])
    with pytest.raises(ApplicationError) as caught:
        invoice_void(invoice=issued, now=AFTER_OCTOBER)
    assert caught.value.code == "invalid_transition"
    assert len(mail.outbox) == 1
    assert InvoiceEmail.objects.filter(invoice=issued, kind="void_notice").count() == 1


def test_voiding_without_email_queues_no_notice(issued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invoice_void(invoice=issued, now=AFTER_OCTOBER, send_email=False)
    assert mail.outbox == [] and not InvoiceEmail.objects.filter(kind="void_notice").exists()


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_the_reissued_invoice_names_the_one_it_replaces_on_its_pdf_and_email(
    issued, django_capture_on_commit_callbacks
):
    voided = invoice_void(invoice=issued, now=AFTER_OCTOBER, send_email=False)
    with django_capture_on_commit_callbacks(execute=True):
        again, created = invoice_reissue(invoice=voided, now=AFTER_OCTOBER)
    assert created and again.number != issued.number
    assert again.replaces_id == issued.pk
    # the header's labels and values are two columns: "Replaces" with the values after it
    labels, values = _pdf_text(invoice_pdf_content(invoice=again)).split("\nStatus\n", 1)
    assert labels.split("\n")[-7:] == [
        "Invoice number",
        "Replaces",
        "Issue date",
        "Due date",
        "Payment terms",  # layout 2
        "Billing period",
        "Time zone",
    ]
    assert values.split("\n")[:3] == ["INVOICE", again.number, issued.number]
    assert "Replaces" not in _pdf_text(invoice_pdf_content(invoice=voided))
    (message,) = mail.outbox
    assert f"It replaces invoice {issued.number}, which was voided." in message.body
    assert InvoiceEvent.objects.filter(invoice=voided, note=f"reissued as {again.number}").exists()


def test_a_draft_created_for_a_voided_month_replaces_the_void_invoice(issued, customer):
    invoice_void(invoice=issued, now=AFTER_OCTOBER, send_email=False)
    result = invoices_generate_for_period(
        reseller=customer.reseller, period_start=OCT, now=AFTER_OCTOBER, customer=customer
    )
    (draft,) = Invoice.objects.filter(pk__in=result.created)
    assert draft.replaces_id == issued.pk
    # the hourly cycle leaves the voided month alone and does not need to know
    assert invoice_cycle_run(reseller=customer.reseller, now=AFTER_OCTOBER).failed == []
