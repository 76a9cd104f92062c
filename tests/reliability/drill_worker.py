"""The Celery worker the drills start as a subprocess (`python -m tests.reliability.drill_worker`).

It is the production worker (`config.settings.base`, `config.celery.app`, `-P solo` unless
`DRILL_POOL` says otherwise) with a few test-only adjustments read from the environment, so
that nothing in production code exists for the drills' sake:

- `DRILL_STALL=<what>:<nth>` stalls the worker at a chosen point, after writing
  `DRILL_MARKER`, so the test can SIGKILL it there deterministically:
  `pdf:2` stalls when the 2nd invoice PDF is about to be stored (that invoice finalized,
  numbered and committed, its PDF not stored). Sync and SMTP stalls need no patch: the
  simulator's `slow` fault and the SMTP stub stall on their side.
- `DRILL_VISIBILITY_TIMEOUT=<s>`: the Redis transport redelivers a message that was never
  acknowledged (its worker died) after this many seconds instead of the setting's 35
  minutes (`CELERY_BROKER_TRANSPORT_OPTIONS`, which refuses anything this short).
- `DRILL_FAST_RETRY=1`: autoretry backoff capped at 1 s, so a retry is seen within the drill.
- `DRILL_CLOCK_FILE=<path>`: `timezone.now()` runs off the real clock by the number of
  seconds in that file (re-read on every call), so the worker lives on the drill's timeline
  (the dates of its data and beat tasks) and the drill can move it forward.

Which worker it is: `DRILL_QUEUES` (`-Q`; by default every queue in `CELERY_TASK_QUEUES`,
`celery` and `webhooks`, as a worker started without -Q does), `DRILL_POOL` (`solo` by
default; `prefork`, the production pool, is the one that enforces task time limits) and
`DRILL_CONCURRENCY` (prefork processes), so a drill can run the two workers of
docker-compose.yml (`worker -Q celery`, `webhooks-worker -Q webhooks --concurrency=8`).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path


def _stall_at(what: str, nth: int, marker: Path) -> None:
    calls = {"n": 0}

    def stall(label: str) -> None:
        calls["n"] += 1
        if calls["n"] == nth:
            marker.write_text(label)
            while True:  # until SIGKILL
                time.sleep(60)

    if what == "pdf":
        # Storing the PDF is the one step every path takes after the number is committed
        # (whatever renders the bytes): stall there, with the PDF not stored yet. Patched
        # on the class of the configured storage (`STORAGES["default"]`).
        from django.core.files.storage import storages

        storage_class = type(storages["default"])
        original = storage_class._save

        def _save(self, name, content):
            if str(name).startswith("invoices/"):
                stall(f"pdf {name}")
            return original(self, name, content)

        storage_class._save = _save
    else:
        raise SystemExit(f"unknown DRILL_STALL target {what!r}")


def _drill_clock(path: Path) -> None:
    from django.utils import timezone

    real_now = timezone.now

    def now() -> dt.datetime:
        return real_now() + dt.timedelta(seconds=float(path.read_text()))

    timezone.now = now


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    if os.environ.get("DRILL_CLOCK_FILE"):
        _drill_clock(Path(os.environ["DRILL_CLOCK_FILE"]))
    from celery.signals import worker_ready

    from config.celery import app

    stall = os.environ.get("DRILL_STALL")
    if stall:
        what, _, nth = stall.partition(":")
        _stall_at(what, int(nth or 1), Path(os.environ["DRILL_MARKER"]))
    if os.environ.get("DRILL_VISIBILITY_TIMEOUT"):
        app.conf.broker_transport_options = {
            "visibility_timeout": float(os.environ["DRILL_VISIBILITY_TIMEOUT"]),
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }
    if os.environ.get("DRILL_FAST_RETRY") == "1":
        from celery.app import autoretry

        original = autoretry.get_exponential_backoff_interval

        def fast(*args, **kwargs):
            return min(original(*args, **kwargs), 1)

        autoretry.get_exponential_backoff_interval = fast

    ready = os.environ.get("DRILL_READY")

    @worker_ready.connect(weak=False)
    def _ready(**kwargs):
        if ready:
            Path(ready).write_text(str(os.getpid()))

    name = os.environ.get("DRILL_WORKER_NAME", "drill")
    options = [f"--pool={os.environ.get('DRILL_POOL') or 'solo'}"]
    if os.environ.get("DRILL_QUEUES"):
        options.append(f"--queues={os.environ['DRILL_QUEUES']}")
    if os.environ.get("DRILL_CONCURRENCY"):
        options.append(f"--concurrency={os.environ['DRILL_CONCURRENCY']}")
    app.worker_main(
        [
            "worker",
            *options,
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            f"--hostname={name}@%h",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
