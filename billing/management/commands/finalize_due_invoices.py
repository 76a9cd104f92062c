"""`manage.py finalize_due_invoices [--reseller SLUG]`: issue drafts past their grace period.

A draft that cannot be finalized (say a plan in another currency than its customer) is listed
with its customer and error code, and the others are finalized; the exit code is then 1.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Reseller
from billing.invoicing.finalizing import invoices_finalize_due
from billing.invoicing.pdf_pool import default_pdf_processes


class Command(BaseCommand):
    help = "Finalize every draft whose period ended more than the grace period ago."

    def add_arguments(self, parser):
        parser.add_argument("--reseller", help="Only this reseller (slug)")

    def handle(self, *args, reseller: str | None, **options):
        the_reseller = None
        if reseller:
            the_reseller = Reseller.objects.filter(slug=reseller).first()
            if the_reseller is None:
                raise CommandError(f"No reseller with slug {reseller!r}.")
        result = invoices_finalize_due(
            now=timezone.now(), reseller=the_reseller, pdf_processes=default_pdf_processes()
        )
        for failure in result.failed:
            self.stderr.write(
                f"  invoice {failure.invoice_id} (customer {failure.customer_id}): "
                f"{failure.code}: {failure.message}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(result.finalized)} finalized, {len(result.discarded)} discarded "
                f"(nothing billable), {len(result.failed)} failed."
            )
        )
        if result.failed:
            raise CommandError(f"{len(result.failed)} draft(s) could not be finalized.")
