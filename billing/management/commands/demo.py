"""`manage.py demo`: seed the demo reseller, sync from the simulator, bill, serve the admin."""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.demo import demo_seed
from billing.demo import demo_close_last_month
from billing.demo_credit_limit import demo_credit_limit
from usage.demo import demo_sync_usage


class Command(BaseCommand):
    help = "Seed demo data, sync usage from the built-in simulator, bill last month, serve."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Set everything up, then exit.")

    def handle(self, *args, addrport: str, no_serve: bool, **options):
        now = timezone.now()
        demo = demo_seed(stdout=self.stdout)
        demo_sync_usage(reseller=demo.reseller, now=now, stdout=self.stdout)
        demo_close_last_month(reseller=demo.reseller, now=now, stdout=self.stdout)
        demo_credit_limit(reseller=demo.reseller, now=now, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(demo.login_banner(addrport)))
        if not no_serve:
            call_command("runserver", addrport, use_reloader=False)
