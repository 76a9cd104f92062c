"""Real Celery workers for the drills: subprocesses on the test database and a Redis broker.

A drill starts `python -m tests.reliability.drill_worker` (the production worker with
test-only stalls, see that module) with `DATABASE_URL` pointing at pytest-django's test
database, so the worker and the test see the same committed rows (the drills use
`transactional_db`). Tasks are sent by name through a separate producer app, exactly as
beat would send them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from celery import Celery
from django.conf import settings
from django.db import connection

from tests.conftest import BROKER_URL as TEST_BROKER_URL
from tests.conftest import worker_redis_url

BASE_DIR = Path(settings.BASE_DIR)
BROKER_URL = worker_redis_url(TEST_BROKER_URL)  # db 9 by default, one below per xdist worker
STARTUP_SECONDS = 90


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, step=0.1):
    """Poll `predicate` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def drill_database_url(*, host: str | None = None, port: int | None = None) -> str:
    """A DATABASE_URL for the test database pytest-django created (optionally via a proxy)."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = host or db.get("HOST") or "127.0.0.1"
    port = port or db.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{db['NAME']}"


class DrillWorker:
    """One worker subprocess. `start()` waits until it consumes; `kill()` is SIGKILL."""

    count = 0

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        DrillWorker.count += 1
        self.name = f"drill{DrillWorker.count}"
        self.workdir = workdir
        self.env = env
        self.log_path = workdir / f"{self.name}.log"
        self.ready_path = workdir / f"{self.name}.ready"
        self.process: subprocess.Popen | None = None

    def start(self) -> DrillWorker:
        env = {
            **os.environ,
            **self.env,
            "DRILL_WORKER_NAME": self.name,
            "DRILL_READY": str(self.ready_path),
        }
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.drill_worker"],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: self.ready_path.exists() or self.process.poll() is not None,
            timeout=STARTUP_SECONDS,
            what=f"worker {self.name} to start",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited at start:\n{self.log_tail()}")
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is acknowledged or cleaned up."""
        if self.alive:
            os.kill(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL if it does not end in time."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if self.process is not None:
            self.process.wait(timeout=30)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log_count(self, text: str) -> int:
        """How many log lines contain `text` (task outcomes, reconnections...)."""
        try:
            return sum(
                text in line for line in self.log_path.read_text(errors="replace").splitlines()
            )
        except OSError:
            return 0

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"


class Producer:
    """Sends tasks by name to the drill broker, like beat or a web process would (routed to
    their queues as in production: `webhooks.tasks.*` to `webhooks`, the rest to `celery`)."""

    def __init__(self, broker_url: str = BROKER_URL) -> None:
        self.app = Celery("drill-producer", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            task_default_queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            task_queues=settings.CELERY_TASK_QUEUES,
            task_routes=settings.CELERY_TASK_ROUTES,
        )

    def send(self, name: str, *args, **kwargs) -> None:
        self.app.send_task(name, args=list(args), kwargs=kwargs)

    def close(self) -> None:
        self.app.close()
