"""`manage.py serve`: the web server, a Celery worker and beat together, until Ctrl-C.

Without `CELERY_BROKER_URL` they share the embedded broker (message files under
`var/broker/`), so tasks are queued and run by the worker and beat's schedule runs, as in
production; what is queued when it stops is run at the next start. With a broker URL
they use that broker instead. See config/runtime/.
"""

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from config.runtime.broker import embedded_broker_transport_options, processed_messages_prune
from config.runtime.supervisor import (
    DEFAULT_STOP_TIMEOUT,
    Supervisor,
    ready_url,
    runtime_processes,
    web_ready,
)


class Command(BaseCommand):
    help = (
        "Run the web server, a Celery worker (every queue) and beat together; without "
        "CELERY_BROKER_URL on the embedded broker under var/broker/. Ctrl-C stops all."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--addrport", default="127.0.0.1:8000", help="The web server's [address:]port."
        )
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Worker threads (default 2)."
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=DEFAULT_STOP_TIMEOUT,
            help="Seconds running tasks get to finish at Ctrl-C before all is killed.",
        )

    def handle(self, *args, addrport: str, concurrency: int, stop_timeout: float, **options):
        embedded = not os.environ.get("CELERY_BROKER_URL")
        broker_dir = settings.FLOWBILL_BROKER_DIR
        if embedded:
            embedded_broker_transport_options(broker_dir)  # the folders, before anyone uses them
        if connection.vendor == "sqlite":
            # Readers (the admin) no longer wait for the worker's writes, and the reverse.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
            connection.close()
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        processes = runtime_processes(
            addrport=addrport,
            queues=[queue.name for queue in settings.CELERY_TASK_QUEUES],
            beat_schedule=settings.VAR_DIR / "celerybeat-schedule",
            concurrency=concurrency,
            manage_py=settings.BASE_DIR / "manage.py",
        )
        broker = f"embedded, {broker_dir}" if embedded else "CELERY_BROKER_URL"
        url = ready_url(addrport)

        def write(line: str) -> None:
            self.stdout.write(f"serve: {line}")
            self.stdout.flush()

        def on_ready() -> None:
            write(
                f"ready at {url.removesuffix('/readyz')}/ : web, worker and beat "
                f"(broker: {broker}); Ctrl-C stops all"
            )

        supervisor = Supervisor(
            processes,
            env={**os.environ, "FLOWBILL_EMBEDDED_RUNTIME": "1"},
            cwd=settings.BASE_DIR,
            write=write,
            stop_timeout=stop_timeout,
            ready=lambda: web_ready(url),
            on_ready=on_ready,
            housekeeping=(lambda: processed_messages_prune(broker_dir)) if embedded else None,
        )
        code = supervisor.run()
        write("stopped" if code == 0 else "stopped after a process ended on its own")
        if code:
            sys.exit(code)
