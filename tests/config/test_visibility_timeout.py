"""The broker's visibility timeout: how long a killed worker's task waits before another
worker runs it. A setting sized to the longest task, never below it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.celery import app
from core.task_options import (
    DEFAULT_VISIBILITY_TIMEOUT,
    LONGEST_HARD_TIME_LIMIT,
    RESELLER_BATCH_TIME_LIMITS,
    broker_visibility_timeout,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_is_the_longest_hard_time_limit_plus_five_minutes_not_an_hour():
    assert LONGEST_HARD_TIME_LIMIT == RESELLER_BATCH_TIME_LIMITS["time_limit"] == 1800
    assert DEFAULT_VISIBILITY_TIMEOUT == 2100
    assert app.conf.broker_transport_options == {"visibility_timeout": 2100}
    for unset in (None, "", "  "):
        assert broker_visibility_timeout(unset, longest_hard_limit=1800) == 2100


def test_a_longer_limit_than_the_declared_ones_moves_the_default_with_it():
    assert broker_visibility_timeout(None, longest_hard_limit=2400) == 2700


def test_a_value_above_the_longest_hard_limit_is_taken():
    assert broker_visibility_timeout("1801", longest_hard_limit=1800) == 1801
    assert broker_visibility_timeout("7200", longest_hard_limit=1800) == 7200


@pytest.mark.parametrize("value", ["1800", "600", "0", "-5"])
def test_a_value_not_above_the_longest_hard_limit_is_refused(value):
    with pytest.raises(ImproperlyConfigured, match=r"above the longest task hard time limit"):
        broker_visibility_timeout(value, longest_hard_limit=1800)


@pytest.mark.parametrize("value", ["35m", "2100.5", "one hour"])
def test_a_value_that_is_not_whole_seconds_is_refused(value):
    with pytest.raises(ImproperlyConfigured, match="whole number of seconds"):
        broker_visibility_timeout(value, longest_hard_limit=1800)


def _celery_conf(value: str) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup(); from config.celery import app; "
        "print(app.conf.broker_transport_options['visibility_timeout'])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLOWBILL_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "FLOWBILL_BROKER_VISIBILITY_TIMEOUT": value,
        }
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_the_environment_variable_reaches_celery_and_a_short_one_stops_the_start():
    assert _celery_conf("2400").stdout.strip() == "2400"

    refused = _celery_conf("900")
    assert refused.returncode != 0
    assert "FLOWBILL_BROKER_VISIBILITY_TIMEOUT=900 must be above" in refused.stderr
