"""`manage.py upstream_simulator`: serve the IPFoxy and BytesFlows simulator until Ctrl-C.

Same flags as `python -m usage.simulator`; see docs/simulator.md.
"""

from django.core.management.base import BaseCommand, CommandError

from usage.simulator.cli import add_arguments, banner, config_from_options
from usage.simulator.server import serve_forever


class Command(BaseCommand):
    help = "Serve the IPFoxy + BytesFlows upstream simulator (blocking; Ctrl-C to stop)."

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        try:
            config = config_from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        serve_forever(
            host=options["host"],
            port=options["port"],
            config=config,
            on_ready=lambda url: (self.stdout.write(banner(url, config)), self.stdout.flush()),
        )
