"""The traffic model on its own: no server, no clock."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usage.simulator import traffic

accounts = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=16)
days = st.integers(min_value=19_000, max_value=21_000)  # 2022..2027


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), account=accounts, day=days)
def test_hours_of_a_local_day_sum_exactly_to_the_day_total(seed, account, day):
    hours = traffic.day_hours_centi(seed, account, day)

    assert len(hours) == 24
    assert min(hours) >= 0
    assert sum(hours) == traffic.day_total_centi(seed, account, day)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), account=accounts, day=days, hour=st.integers(0, 23))
def test_hour_value_is_a_pure_function_of_seed_account_and_hour(seed, account, day, hour):
    start = traffic.local_day_start(day) + hour * traffic.HOUR
    traffic.day_hours_centi.cache_clear()
    first = traffic.hour_centi(seed, account, start)
    traffic.day_hours_centi.cache_clear()

    assert traffic.hour_centi(seed, account, start) == first


@pytest.mark.parametrize(
    ("centi", "text"),
    [(0, "0"), (1100, "11"), (145310, "1453.1"), (145316, "1453.16"), (5, "0.05"), (-150, "-1.5")],
)
def test_flow_strings_look_like_ipfoxy_ones(centi, text):
    assert traffic.format_centi(centi) == text
    if centi >= 0:
        assert traffic.parse_centi(text) == centi


@pytest.mark.parametrize("bad", ["-1", "1.234", "abc", "NaN", "inf"])
def test_revision_flows_must_be_non_negative_with_two_decimals(bad):
    with pytest.raises(ValueError, match=r"number|decimals"):
        traffic.parse_centi(bad)


def test_kb_conversion_is_exact():
    assert traffic.centi_mb_to_kb(145316) == str(Decimal("1453.16") * 1024).rstrip("0")
    assert traffic.centi_mb_to_kb(100) == "1024"
    assert traffic.centi_mb_to_kb(0) == "0"


def test_labels_are_plus8_and_bytesflows_times_are_utc():
    noon_utc = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC).timestamp())

    assert traffic.local_label(noon_utc) == "2026-11-20 20:00:00"
    assert traffic.local_label(noon_utc + 17 * 60, with_minutes=True) == "2026-11-20 20:17:00"
    assert traffic.utc_label(noon_utc) == "2026-11-20 12:00:00"
    assert traffic.local_day_start(traffic.local_day(noon_utc)) == noon_utc - 20 * 3600


def test_a_good_share_of_hours_are_idle_but_not_most():
    hours = [
        h for day in range(20_400, 20_430) for h in traffic.day_hours_centi(1, "SIM00001", day)
    ]

    idle = hours.count(0) / len(hours)
    assert 0.05 < idle < 0.4


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    account=accounts,
    t1=st.integers(0, 400 * 86400),
    t2=st.integers(0, 400 * 86400),
)
def test_grant_usage_is_monotone_and_capped(seed, account, t1, t2):
    anchor = traffic.local_day_start(20_400)
    early, late = sorted((t1, t2))
    for grant in traffic.account_grants(seed, account, anchor):
        used_early = grant.used_at(grant.created + early - 86400)
        used_late = grant.used_at(grant.created + late - 86400)
        assert 0 <= used_early <= used_late <= grant.traffic


def test_grants_have_distinct_ids_and_one_to_three_per_account():
    counts = set()
    for i in range(50):
        grants = traffic.account_grants(0, f"acct{i}", traffic.local_day_start(20_400))
        counts.add(len(grants))
        assert len({g.record_id for g in grants}) == len(grants)
        assert any(g.source_type == "order" for g in grants)

    assert counts == {1, 2, 3}
