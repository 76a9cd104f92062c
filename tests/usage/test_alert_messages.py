"""Usage alert messages state the share measured, not the rule's threshold (issue 17)."""

import datetime as dt
from decimal import Decimal

import pytest

from usage.alerts import usage_alerts_check
from usage.models import UsageAlertRule, UsageDay

GB = 1_000_000_000
NOV_20 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def _used(sub_account, total_bytes: int) -> None:
    """`total_bytes` over the first two days of November."""
    half = total_bytes // 2
    UsageDay.objects.bulk_create(
        [
            UsageDay(sub_account=sub_account, day=dt.date(2026, 11, 1), bytes=half),
            UsageDay(sub_account=sub_account, day=dt.date(2026, 11, 2), bytes=total_bytes - half),
        ]
    )


@pytest.mark.django_db
def test_a_quota_alert_says_the_share_used_and_its_threshold(customer, sub_account):
    """The issue's repro: 52.01 GB of a 50 GB quota with an 80 % rule was "80 % of the 50 GB
    monthly quota reached"; it is 104 % used."""
    UsageAlertRule.objects.create(
        customer=customer, kind="quota_share", quota_gb=Decimal("50"), percent=80, unit_bytes=GB
    )
    _used(sub_account, 52_010_000_000)
    (alert,) = usage_alerts_check(customer=customer, now=NOV_20)
    assert alert.message == (
        "52.01 GB used in November 2026: 104% of the 50 GB monthly quota (alert at 80%)."
    )


@pytest.mark.django_db
def test_the_share_is_rounded_like_the_gb_beside_it(customer, sub_account):
    """40.999 GB of 50 GB is 81.998 %: "41.00 GB" and "82%"."""
    UsageAlertRule.objects.create(
        customer=customer, kind="quota_share", quota_gb=Decimal("50"), percent=80, unit_bytes=GB
    )
    _used(sub_account, 40_999_000_000)
    (alert,) = usage_alerts_check(customer=customer, now=NOV_20)
    assert alert.message == (
        "41.00 GB used in November 2026: 82% of the 50 GB monthly quota (alert at 80%)."
    )
