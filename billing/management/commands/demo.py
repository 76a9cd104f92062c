"""`manage.py demo`: seed the demo reseller, sync from the simulator, bill, then serve the
admin with `manage.py serve` (web server, Celery worker and beat on the embedded broker).

The set-up runs its tasks in-process, as before; serving runs in this process, so the
simulator it started for the set-up keeps answering the worker's hourly syncs.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.demo import STAFF_USER, SUPERUSER, demo_seed
from billing.demo import demo_close_last_month
from billing.demo_credit_limit import demo_credit_limit
from usage.demo import demo_sync_usage


class Command(BaseCommand):
    help = (
        "Seed demo data, sync usage from the built-in simulator, bill last month, then serve "
        "web, worker and beat (`manage.py serve`)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--addrport", default="127.0.0.1:8000", help="The web server's [address:]port."
        )
        parser.add_argument(
            "--simulator-port",
            type=int,
            default=None,
            help="The upstream simulator's port (default FLOWBILL_SIMULATOR_PORT, else 8765).",
        )
        parser.add_argument("--no-serve", action="store_true", help="Set everything up, then exit.")

    def handle(self, *args, addrport: str, simulator_port: int | None, no_serve: bool, **options):
        now = timezone.now()
        demo = demo_seed(stdout=self.stdout)
        demo_sync_usage(
            reseller=demo.reseller, now=now, stdout=self.stdout, simulator_port=simulator_port
        )
        demo_close_last_month(reseller=demo.reseller, now=now, stdout=self.stdout)
        demo_credit_limit(reseller=demo.reseller, now=now, stdout=self.stdout)
        if no_serve:
            self.stdout.write(
                self.style.SUCCESS(
                    "\nSet-up done; serve with: python manage.py serve\n"
                    f"  reseller staff: {STAFF_USER[0]} / {STAFF_USER[1]}  "
                    f"(sees only {demo.reseller})\n"
                    f"  superuser:      {SUPERUSER[0]} / {SUPERUSER[1]}\n"
                    "The upstream simulator stopped with this command; `make demo` serves with "
                    "it running."
                )
            )
            return
        self.stdout.write(self.style.SUCCESS(demo.login_banner(addrport)))
        call_command("serve", addrport=addrport)
