"""Fixtures of the reliability drills: the simulator, real workers, an SMTP stub (their
figures are printed by tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.conf import settings as django_settings

from tests.conftest import REQUIRE_SERVICES
from tests.reliability.smtp_stub import SmtpStub
from tests.reliability.workers import BROKER_URL, DrillWorker, Producer, drill_database_url
from usage.simulator import SimulatorConfig, start_simulator

IPFOXY_CREDENTIALS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
SMTP_USER = "drill-mailer"
SMTP_PASSWORD = "smtp-password-SECRET-7f3a"


def start_sim(now: dt.datetime, **config):
    config.setdefault("rate_limit_enabled", False)
    return start_simulator(port=0, config=SimulatorConfig(seed=11, now=now, **config))


def _broker_client():
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if REQUIRE_SERVICES:
            raise
        pytest.skip("needs Redis at " + BROKER_URL)
    return client


@dataclass
class Drill:
    """One drill's moving parts; everything started here is stopped at teardown."""

    workdir: object
    smtp: SmtpStub
    redis: object
    producer: Producer
    workers: list[DrillWorker] = field(default_factory=list)
    base_env: dict[str, str] = field(default_factory=dict)

    @property
    def clock_file(self):
        return self.workdir / "clock"

    def worker(self, **env: str) -> DrillWorker:
        worker = DrillWorker(self.workdir, {**self.base_env, **env})
        self.workers.append(worker)
        return worker.start()

    def set_clock(self, moment: dt.datetime) -> None:
        """Workers see `timezone.now()` at `moment` from now on (and running from there)."""
        offset = moment - dt.datetime.now(dt.UTC)
        self.clock_file.write_text(str(offset.total_seconds()))

    def send(self, name: str, *args, **kwargs) -> None:
        self.producer.send(name, *args, **kwargs)

    def broker_idle(self) -> bool:
        """No message waiting (in any queue) and none delivered-but-unacknowledged."""
        waiting = sum(self.redis.llen(queue.name) for queue in django_settings.CELERY_TASK_QUEUES)
        return waiting == 0 and self.redis.hlen("unacked") == 0


@pytest.fixture
def drill(transactional_db, settings, tmp_path):
    """Real workers on the test database with Redis (db 9 by default) as the broker."""
    client = _broker_client()
    client.flushdb()
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    smtp = SmtpStub().start()
    producer = Producer()
    (tmp_path / "clock").write_text("0")
    state = Drill(
        workdir=tmp_path,
        smtp=smtp,
        redis=client,
        producer=producer,
        base_env={
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": drill_database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": BROKER_URL,
            "REDIS_URL": BROKER_URL,
            "MEDIA_ROOT": str(media),
            "FLOWBILL_VAR_DIR": str(tmp_path / "var"),
            "EMAIL_HOST": smtp.host,
            "EMAIL_PORT": str(smtp.port),
            "EMAIL_USE_TLS": "0",
            "EMAIL_HOST_USER": SMTP_USER,
            "EMAIL_HOST_PASSWORD": SMTP_PASSWORD,
            "EMAIL_TIMEOUT": "20",
            "DRILL_MARKER": str(tmp_path / "stalled"),
            "DRILL_VISIBILITY_TIMEOUT": "4",
            "DRILL_CLOCK_FILE": str(tmp_path / "clock"),
        },
    )
    try:
        yield state
    finally:
        for worker in state.workers:
            worker.kill()
        producer.close()
        smtp.stop()
        client.flushdb()
