"""`manage.py generate_invoices --period 2026-10 [--customer ID] [--reseller SLUG] [--finalize]`.

An ended period: drafts are created (or refreshed) per customer, and issued with
`--finalize`. The current, unfinished period: a preview is printed and nothing is saved.

Void then reissue: a customer whose invoice of the period was voided is billed again (a new
number) only when named with `--customer`; without it such customers are listed and left
alone. A customer that fails is listed with its error code and the others are billed; the
exit code is then 1. A customer with nothing billable in the month gets no invoice and is
listed as skipped (`nothing_billable`); `--customer` for a month that ended before the
customer was created, with nothing billable in it, is an error (`period_before_customer`).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from accounts.models import Customer, Reseller
from billing.invoicing.compute import invoice_preview
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.generate import skipped_refusal
from billing.invoicing.issuing import invoices_issue_for_period
from billing.invoicing.pdf_pool import default_pdf_processes
from billing.invoicing.periods import period_containing, period_has_ended, period_parse
from billing.money import format_money
from billing.selectors import customers_to_invoice
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create (and optionally finalize) the invoices of one month; preview an open month."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="The month, YYYY-MM (e.g. 2026-10)")
        parser.add_argument("--customer", type=int, help="Only this customer id")
        parser.add_argument("--reseller", help="Only this reseller (slug)")
        parser.add_argument("--finalize", action="store_true", help="Issue the drafts too")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, period: str, customer: int | None, reseller: str | None, **opts):
        self.failures = 0
        try:
            month = period_parse(period)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        now = timezone.now()
        the_customer = None
        if customer is not None:
            the_customer = Customer.objects.select_related("reseller").filter(pk=customer).first()
            if the_customer is None:
                raise CommandError(f"No customer with id {customer}.")
            resellers = [the_customer.reseller]
        elif reseller:
            resellers = list(Reseller.objects.filter(slug=reseller))
            if not resellers:
                raise CommandError(f"No reseller with slug {reseller!r}.")
        else:
            resellers = list(Reseller.objects.order_by("pk"))
        for each in resellers:
            tz = each.tzinfo
            if month > period_containing(tz=tz, now=now):
                raise CommandError(f"{month.label} has not started yet in {each.timezone}.")
            if not period_has_ended(period=month, tz=tz, now=now):
                if opts["finalize"]:
                    raise CommandError(
                        f"{month.label} is still open in {each.timezone}: it can be previewed, "
                        "not finalized."
                    )
                self._preview(each, month, the_customer)
            else:
                self._generate(each, month, the_customer, now, opts)
        if self.failures:
            raise CommandError(f"{self.failures} customer(s) could not be invoiced.")

    def _bar(self, total: int, desc: str, opts) -> tqdm:
        return tqdm(total=total, desc=desc, unit="inv", disable=opts["no_progress"], leave=False)

    def _preview(self, reseller, month, customer) -> None:
        self.stdout.write(
            self.style.WARNING(
                f"{reseller.name}: {month.label} is not over yet; PREVIEW only, nothing saved."
            )
        )
        customers = (
            [customer]
            if customer
            else customers_to_invoice(reseller=reseller, start_day=month.start, end_day=month.end)
        )
        for each in customers:
            preview = invoice_preview(customer=each, period_start=month.start)
            self.stdout.write(
                f"  {each.pk:>6}  {each.name[:40]:<40}  {len(preview.lines):>3} lines  "
                f"{format_money(preview.totals.total, preview.currency)}"
            )

    def _generate(self, reseller, month, customer, now, opts) -> None:
        total = (
            1
            if customer
            else customers_to_invoice(
                reseller=reseller, start_day=month.start, end_day=month.end
            ).count()
        )
        if not opts["finalize"]:
            with self._bar(total, f"{reseller.slug} drafts", opts) as bar:
                result = invoices_generate_for_period(
                    reseller=reseller,
                    period_start=month.start,
                    customer=customer,
                    now=now,
                    on_progress=lambda _invoice: bar.update(1),
                )
            done = (
                f"{len(result.created)} created, {len(result.refreshed)} drafts refreshed, "
                f"{len(result.resumed)} resumed, {len(result.already)} already issued"
            )
        else:
            with self._bar(total, f"{reseller.slug} issue", opts) as bar:
                result = invoices_issue_for_period(
                    reseller=reseller,
                    period_start=month.start,
                    now=now,
                    customers=[customer] if customer else None,
                    actor="generate_invoices",
                    pdf_processes=default_pdf_processes(),
                    on_progress=bar.update,
                )
            done = f"{len(result.issued)} finalized, {len(result.already)} already issued"
        failures, skipped = result.failed, result.skipped
        try:
            skipped_refusal(skipped, customer=customer)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        for failure in failures:
            self.stderr.write(
                f"  customer {failure.customer_id}: {failure.code}: {failure.message}"
            )
        for skip in skipped:
            self.stdout.write(f"  customer {skip.customer_id}: skipped: {skip.message}")
        for customer_id in result.voided:
            self.stdout.write(
                f"  customer {customer_id}: {month.label} was voided; not billed again "
                f"(reissue with --customer {customer_id})"
            )
        self.failures += len(failures)
        self.stdout.write(
            self.style.SUCCESS(
                f"{reseller.name} {month.label}: {done}, {len(result.voided)} voided left "
                f"alone, {len(skipped)} with nothing billable, {len(failures)} failed."
            )
        )
