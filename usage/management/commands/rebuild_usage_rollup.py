"""Recompute the reseller-wide usage rollup from the stored days."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Reseller
from usage.services.rollup import reseller_usage_days_rebuild


class Command(BaseCommand):
    help = (
        "Recompute ResellerUsageDay (the rollup the reseller-wide usage series reads) from "
        "UsageDay, for one reseller (--reseller SLUG) or all of them. Safe while syncs run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reseller", help="The reseller's slug; absent: every reseller.")

    def handle(self, *args, reseller=None, **options):
        resellers = Reseller.objects.order_by("pk")
        if reseller is not None:
            resellers = resellers.filter(slug=reseller)
            if not resellers.exists():
                raise CommandError(f"No reseller with slug {reseller!r}.")
        for one in resellers:
            rows = reseller_usage_days_rebuild(reseller=one)
            self.stdout.write(f"{one.slug}: {rows} rollup rows")
