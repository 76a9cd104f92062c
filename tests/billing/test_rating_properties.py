"""Properties of rating over random valid plans (hypothesis): monotonic charges, summing
sub-accounts in any partition gives identical lines, lines add up, amounts carry the currency's
exponent, and the minimum is always met."""

from decimal import Decimal, localcontext
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.money import is_quantized, quantize_money
from billing.rating import (
    PlanTerms,
    Tier,
    invoice_totals,
    prorate,
    rate_subscription,
    rate_usage,
    subscription_amount,
    usage_quantity,
    usage_total,
)

GIB = 2**30
MAX_BYTES = 3_000 * GIB

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
UNITS = st.sampled_from([GIB, 10**9, 1_000_000])
# Prices as stored: Decimal(20, 6), up to 100.000000.
PRICES = st.integers(0, 100_000_000).map(lambda n: Decimal(n).scaleb(-6))
FEES = st.integers(0, 10_000_00).map(lambda n: Decimal(n).scaleb(-2))
BYTES = st.integers(0, MAX_BYTES)
TAX_RATES = st.integers(0, 30_0000).map(lambda n: Decimal(n).scaleb(-4))  # 0-30 %, 4 decimals


@st.composite
def tiers(draw, *, non_decreasing=False):
    """1-5 tiers with ascending bounds in tenths of a GB, the last one unlimited."""
    bounds = sorted(draw(st.lists(st.integers(1, 20_000), unique=True, max_size=4)))
    prices = draw(st.lists(PRICES, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    fees = draw(st.lists(FEES, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    if non_decreasing:
        prices, fees = sorted(prices), sorted(fees)
    ups = [Decimal(b).scaleb(-1) for b in bounds] + [None]
    return tuple(Tier(up, price, fee) for up, price, fee in zip(ups, prices, fees, strict=True))


@st.composite
def plans(draw, models=("graduated", "volume", "package"), *, monotonic_volume=False):
    model = draw(st.sampled_from(models))
    common = {
        "currency": draw(CURRENCIES),
        "pricing_model": model,
        "unit_bytes": draw(UNITS),
        "base_fee": draw(FEES),
        "minimum_charge": draw(FEES),
    }
    if model == "package":
        size = draw(st.integers(1, 5_000).map(lambda n: Decimal(n).scaleb(-1)))
        return PlanTerms(**common, package_size=size, package_price=draw(PRICES))
    non_decreasing = model == "volume" and monotonic_volume
    return PlanTerms(**common, tiers=draw(tiers(non_decreasing=non_decreasing)))


@st.composite
def proration(draw):
    period_days = draw(st.integers(28, 31))
    return draw(st.integers(0, period_days)), period_days


@settings(max_examples=300, deadline=None)
@given(
    terms=plans(("graduated", "package")),
    usage=BYTES,
    more=st.integers(0, MAX_BYTES),
    days=proration(),
)
def test_charge_never_decreases_when_usage_grows(terms, usage, more, days):
    active_days, period_days = days
    before = rate_subscription(
        terms=terms, usage_bytes=usage, active_days=active_days, period_days=period_days
    )
    after = rate_subscription(
        terms=terms, usage_bytes=usage + more, active_days=active_days, period_days=period_days
    )
    assert subscription_amount(after) >= subscription_amount(before)
    usage_before = subscription_amount(rate_usage(terms=terms, usage_bytes=usage))
    usage_after = subscription_amount(rate_usage(terms=terms, usage_bytes=usage + more))
    assert usage_after >= usage_before


@settings(max_examples=200, deadline=None)
@given(terms=plans(("volume",), monotonic_volume=True), usage=BYTES, more=BYTES)
def test_volume_charge_never_decreases_when_higher_tiers_cost_no_less(terms, usage, more):
    """Volume is monotonic when prices and flat fees do not fall with the tier (the cliff of a
    cheaper higher tier is tested in the golden table)."""
    before = subscription_amount(rate_usage(terms=terms, usage_bytes=usage))
    after = subscription_amount(rate_usage(terms=terms, usage_bytes=usage + more))
    assert after >= before


@st.composite
def partitions(draw):
    """A total and two different splits of it across 1-12 sub-accounts."""
    total = draw(BYTES)

    def split():
        cuts = draw(st.lists(st.integers(0, total), max_size=11))
        points = [0, *sorted(cuts), total]
        return [b - a for a, b in pairwise(points)]

    return total, split(), split()


@settings(max_examples=200, deadline=None)
@given(terms=plans(), parts=partitions(), days=proration())
@pytest.mark.slow
def test_splitting_usage_across_sub_accounts_never_changes_the_lines(terms, parts, days):
    total, first, second = parts
    active_days, period_days = days

    def rate(byte_counts):
        return rate_subscription(
            terms=terms,
            usage_bytes=usage_total(byte_counts),
            active_days=active_days,
            period_days=period_days,
        )

    assert rate(first) == rate(second) == rate([total])


@settings(max_examples=300, deadline=None)
@given(terms=plans(), usage=BYTES, days=proration(), tax_rate=TAX_RATES)
def test_lines_sum_to_subtotal_and_every_amount_has_the_currency_exponent(
    terms, usage, days, tax_rate
):
    active_days, period_days = days
    lines = rate_subscription(
        terms=terms, usage_bytes=usage, active_days=active_days, period_days=period_days
    )
    totals = invoice_totals(
        amounts=[line.amount for line in lines], tax_rate=tax_rate, currency=terms.currency
    )
    assert totals.subtotal == sum(line.amount for line in lines)
    assert totals.total == totals.subtotal + totals.tax
    assert totals.tax == quantize_money(totals.subtotal * tax_rate / 100, terms.currency)
    for amount in [line.amount for line in lines] + [totals.subtotal, totals.tax, totals.total]:
        assert is_quantized(amount, terms.currency)


@settings(max_examples=200, deadline=None)
@given(terms=plans(), usage=BYTES, days=proration())
def test_subscription_charges_at_least_the_prorated_minimum(terms, usage, days):
    active_days, period_days = days
    lines = rate_subscription(
        terms=terms, usage_bytes=usage, active_days=active_days, period_days=period_days
    )
    minimum = quantize_money(
        prorate(terms.minimum_charge, active_days=active_days, period_days=period_days),
        terms.currency,
    )
    charged = subscription_amount(lines)
    assert charged >= minimum
    if any(line.kind == "minimum" for line in lines):
        assert charged == minimum
        assert lines[-1].kind == "minimum"
        assert lines[-1].amount > 0


@settings(max_examples=200, deadline=None)
@given(terms=plans(("graduated",)), usage=BYTES)
def test_graduated_lines_cover_every_unit_once(terms, usage):
    lines = rate_usage(terms=terms, usage_bytes=usage)
    with localcontext(prec=100):  # the default 28 digits would round 2**-30 GB fractions
        covered = sum(line.quantity for line in lines)
    assert covered == usage_quantity(usage, terms.unit_bytes)
    assert [line.details["tier"] for line in lines] == list(range(1, len(lines) + 1))
