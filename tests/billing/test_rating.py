"""The rating golden table: hand-computed figures for every pricing model, proration, minimum,
tax and currency exponent. Every row is worked out in its comment; no database involved."""

import json
from decimal import Decimal

import pytest

from billing.rating import (
    PlanTerms,
    Tier,
    invoice_totals,
    rate_subscription,
    rate_usage,
    subscription_amount,
    unit_note,
    usage_quantity,
    usage_total,
)

D = Decimal
GIB = 2**30  # the default billed GB
GB10 = 10**9  # the selectable decimal GB


def graduated(currency="USD", **kwargs):
    """0-100 GB included, 100-500 GB @ 2.50, over 500 GB @ 2.00 + 10.00 flat."""
    tiers = (Tier(D("100"), D("0")), Tier(D("500"), D("2.50")), Tier(None, D("2.00"), D("10.00")))
    return PlanTerms(currency=currency, pricing_model="graduated", tiers=tiers, **kwargs)


def graduated_flat():
    """0-10 GB @ 1.00 + 5.00 flat, over 10 GB @ 0.50 + 3.00 flat."""
    tiers = (Tier(D("10"), D("1.00"), D("5.00")), Tier(None, D("0.50"), D("3.00")))
    return PlanTerms(currency="USD", pricing_model="graduated", tiers=tiers)


def flat_rate(price, currency="USD", unit_bytes=GIB, **kwargs):
    """A single unlimited tier: every GB at `price`."""
    return PlanTerms(
        currency=currency,
        pricing_model="graduated",
        unit_bytes=unit_bytes,
        tiers=(Tier(None, D(price)),),
        **kwargs,
    )


def volume():
    """0-100 GB @ 3.00, 100-500 GB @ 2.00 + 5.00 flat, over 500 GB @ 1.00."""
    tiers = (Tier(D("100"), D("3.00")), Tier(D("500"), D("2.00"), D("5.00")), Tier(None, D("1")))
    return PlanTerms(currency="USD", pricing_model="volume", tiers=tiers)


def package(currency="USD", size="100", price="20.00"):
    return PlanTerms(
        currency=currency, pricing_model="package", package_size=D(size), package_price=D(price)
    )


# (id, terms, usage bytes, [(kind, quantity, amount as printed)])
USAGE_TABLE = [
    ("graduated-zero-usage-first-tier-line", graduated(), 0, [("usage", "0", "0.00")]),
    ("graduated-1-tier-allowance", graduated(), 50 * GIB, [("usage", "50", "0.00")]),
    ("graduated-allowance-boundary-100", graduated(), 100 * GIB, [("usage", "100", "0.00")]),
    # 150 GB: 100 x 0.00 = 0.00; 50 x 2.50 = 125.00
    (
        "graduated-2-tiers",
        graduated(),
        150 * GIB,
        [("usage", "100", "0.00"), ("usage", "50", "125.00")],
    ),
    # 500 GB: 100 x 0.00; 400 x 2.50 = 1000.00; the 10.00 flat fee of tier 3 is not reached
    (
        "graduated-boundary-500",
        graduated(),
        500 * GIB,
        [("usage", "100", "0.00"), ("usage", "400", "1000.00")],
    ),
    # 600 GB: 0.00; 1000.00; 100 x 2.00 + 10.00 = 210.00
    (
        "graduated-3-tiers-flat-fee",
        graduated(),
        600 * GIB,
        [("usage", "100", "0.00"), ("usage", "400", "1000.00"), ("usage", "100", "210.00")],
    ),
    # 3 GB: 3 x 1.00 + 5.00 = 8.00
    ("graduated-flat-fee-first-tier", graduated_flat(), 3 * GIB, [("usage", "3", "8.00")]),
    # 10 GB + 1 byte: 10 x 1.00 + 5.00 = 15.00;
    # 1 byte = 2**-30 GB x 0.50 + 3.00 = 3.0000000005 -> 3.00
    (
        "graduated-one-byte-into-tier-2-charges-its-flat-fee",
        graduated_flat(),
        10 * GIB + 1,
        [("usage", "10", "15.00"), ("usage", "0.000000000931322574615478515625", "3.00")],
    ),
    # 7.5 GB x 1.25 = 9.375 -> 9.38 (half up at .005)
    (
        "graduated-half-up-at-half-cent",
        flat_rate("1.25"),
        7 * GIB + GIB // 2,
        [("usage", "7.5", "9.38")],
    ),
    # 0.5 GB x 0.01 = 0.005 -> 0.01
    ("rounding-0.005-up", flat_rate("0.01"), GIB // 2, [("usage", "0.5", "0.01")]),
    # 0.499999999 GB x 0.01 = 0.00499999999 -> 0.00
    (
        "rounding-below-0.005-down",
        flat_rate("0.01", unit_bytes=GB10),
        499_999_999,
        [("usage", "0.499999999", "0.00")],
    ),
    # 10**12 bytes = 1000 GB at 10**9 per GB -> 1000 x 1.00 = 1000.00
    ("unit-1e9", flat_rate("1.00", unit_bytes=GB10), 10**12, [("usage", "1000", "1000.00")]),
    # 10**12 bytes = 931.322574615478515625 GB at 2**30 per GB -> 931.32
    ("unit-2pow30", flat_rate("1.00"), 10**12, [("usage", "931.322574615478515625", "931.32")]),
    ("volume-zero-usage-no-flat-fee", volume(), 0, [("usage", "0", "0.00")]),
    # 50 x 3.00 = 150.00
    ("volume-tier-1", volume(), 50 * GIB, [("usage", "50", "150.00")]),
    # 100 GB is the top of tier 1: 100 x 3.00 = 300.00
    ("volume-boundary-100", volume(), 100 * GIB, [("usage", "100", "300.00")]),
    # 150 x 2.00 + 5.00 = 305.00
    ("volume-tier-2-flat-fee", volume(), 150 * GIB, [("usage", "150", "305.00")]),
    # 500 x 2.00 + 5.00 = 1005.00
    ("volume-boundary-500", volume(), 500 * GIB, [("usage", "500", "1005.00")]),
    # 501 x 1.00 = 501.00 (cheaper than 500 GB: volume pricing's cliff)
    ("volume-tier-3", volume(), 501 * GIB, [("usage", "501", "501.00")]),
    # 200 GB / 100 = 2 packages x 20.00 = 40.00
    ("package-exact-multiple", package(), 200 * GIB, [("usage", "2", "40.00")]),
    # 250 GB -> 3 packages x 20.00 = 60.00
    ("package-remainder-rounds-up", package(), 250 * GIB, [("usage", "3", "60.00")]),
    ("package-one-byte-is-one-package", package(), 1, [("usage", "1", "20.00")]),
    ("package-zero-usage", package(), 0, [("usage", "0", "0.00")]),
    # 1 GB at 1.2345 KWD -> 1.2345 -> 1.235 (3 decimals, half up)
    ("kwd-3-decimals", flat_rate("1.2345", currency="KWD"), GIB, [("usage", "1", "1.235")]),
    # 0.5 GB x 1 JPY = 0.5 -> 1; 1.5 GB -> 2; 2.4 GB -> 2
    ("jpy-half-yen-up", flat_rate("1", currency="JPY"), GIB // 2, [("usage", "0.5", "1")]),
    (
        "jpy-0-decimals",
        flat_rate("1", currency="JPY", unit_bytes=GB10),
        2_400_000_000,
        [("usage", "2.4", "2")],
    ),
    # 5 GB packages at 1000 JPY: 12 GB -> 3 packages = 3000
    ("jpy-package", package("JPY", "5", "1000"), 12 * GIB, [("usage", "3", "3000")]),
]


def _summary(lines):
    return [(line.kind, line.quantity, str(line.amount)) for line in lines]


def _expected(rows):
    return [(kind, D(quantity), amount) for kind, quantity, amount in rows]


@pytest.mark.parametrize(
    ("terms", "usage_bytes", "expected"),
    [pytest.param(t, u, e, id=i) for i, t, u, e in USAGE_TABLE],
)
def test_rate_usage_golden_table(terms, usage_bytes, expected):
    lines = rate_usage(terms=terms, usage_bytes=usage_bytes)
    assert _summary(lines) == _expected(expected)
    for line in lines:
        json.dumps(line.details)  # stored on the invoice line as JSON
        assert line.details["usage_bytes"] == usage_bytes
        assert line.details["unit_bytes"] == terms.unit_bytes


# (id, terms, usage bytes, active days, period days, [(kind, quantity, amount)])
SUBSCRIPTION_TABLE = [
    # 30.00 x 10 / 31 = 9.677419... -> 9.68
    (
        "base-fee-prorated-10-of-31",
        flat_rate("1.00", base_fee=D("30.00")),
        0,
        10,
        31,
        [("base_fee", "10", "9.68"), ("usage", "0", "0.00")],
    ),
    (
        "base-fee-full-30-of-30",
        flat_rate("1.00", base_fee=D("30.00")),
        0,
        30,
        30,
        [("base_fee", "1", "30.00"), ("usage", "0", "0.00")],
    ),
    (
        "base-fee-full-31-of-31-exact",
        flat_rate("1.00", base_fee=D("29.99")),
        0,
        31,
        31,
        [("base_fee", "1", "29.99"), ("usage", "0", "0.00")],
    ),
    ("no-base-fee-no-line", flat_rate("1.00"), 2 * GIB, 30, 30, [("usage", "2", "2.00")]),
    # 10.00 + 25 x 1.00 = 35.00 < 50.00 -> top-up 15.00
    (
        "minimum-top-up",
        flat_rate("1.00", base_fee=D("10.00"), minimum_charge=D("50.00")),
        25 * GIB,
        30,
        30,
        [("base_fee", "1", "10.00"), ("usage", "25", "25.00"), ("minimum", "1", "15.00")],
    ),
    # 10.00 + 45.00 = 55.00 >= 50.00 -> no top-up
    (
        "minimum-not-needed-above",
        flat_rate("1.00", base_fee=D("10.00"), minimum_charge=D("50.00")),
        45 * GIB,
        30,
        30,
        [("base_fee", "1", "10.00"), ("usage", "45", "45.00")],
    ),
    # exactly the minimum -> no zero top-up line
    (
        "minimum-met-exactly",
        flat_rate("1.00", base_fee=D("10.00"), minimum_charge=D("50.00")),
        40 * GIB,
        30,
        30,
        [("base_fee", "1", "10.00"), ("usage", "40", "40.00")],
    ),
    # 10 of 31 days: base 10.00 -> 3.2258 -> 3.23; usage 5.00; minimum 50.00 -> 16.129 -> 16.13;
    # top-up 16.13 - 8.23 = 7.90
    (
        "minimum-prorated",
        flat_rate("1.00", base_fee=D("10.00"), minimum_charge=D("50.00")),
        5 * GIB,
        10,
        31,
        [("base_fee", "10", "3.23"), ("usage", "5", "5.00"), ("minimum", "1", "7.90")],
    ),
    # graduated 150 GB = 125.00 + base 30.00 = 155.00 < minimum 200.00 -> top-up 45.00
    (
        "minimum-over-graduated-lines",
        graduated(base_fee=D("30.00"), minimum_charge=D("200.00")),
        150 * GIB,
        31,
        31,
        [
            ("base_fee", "1", "30.00"),
            ("usage", "100", "0.00"),
            ("usage", "50", "125.00"),
            ("minimum", "1", "45.00"),
        ],
    ),
    # JPY 1000 for 15 of 30 days -> 500; for 10 of 31 days -> 322.58 -> 323
    (
        "jpy-base-fee-half-month",
        flat_rate("1", currency="JPY", base_fee=D("1000")),
        0,
        15,
        30,
        [("base_fee", "15", "500"), ("usage", "0", "0")],
    ),
    (
        "jpy-base-fee-10-of-31",
        flat_rate("1", currency="JPY", base_fee=D("1000")),
        0,
        10,
        31,
        [("base_fee", "10", "323"), ("usage", "0", "0")],
    ),
    # KWD 5.000 for 10 of 31 days -> 1.6129 -> 1.613
    (
        "kwd-base-fee-prorated",
        flat_rate("1", currency="KWD", base_fee=D("5.000")),
        0,
        10,
        31,
        [("base_fee", "10", "1.613"), ("usage", "0", "0.000")],
    ),
    (
        "zero-active-days-charges-nothing",
        flat_rate("1.00", base_fee=D("30.00"), minimum_charge=D("50.00")),
        0,
        0,
        31,
        [("base_fee", "0", "0.00"), ("usage", "0", "0.00")],
    ),
]


@pytest.mark.parametrize(
    ("terms", "usage_bytes", "active_days", "period_days", "expected"),
    [pytest.param(t, u, a, p, e, id=i) for i, t, u, a, p, e in SUBSCRIPTION_TABLE],
)
def test_rate_subscription_golden_table(terms, usage_bytes, active_days, period_days, expected):
    lines = rate_subscription(
        terms=terms, usage_bytes=usage_bytes, active_days=active_days, period_days=period_days
    )
    assert _summary(lines) == _expected(expected)
    for line in lines:
        json.dumps(line.details)


# (id, amounts, tax rate %, currency, (subtotal, tax, total))
TOTALS_TABLE = [
    # 123.45 x 19 / 100 = 23.4555 -> 23.46
    ("tax-19-percent", ["123.45"], "19", "USD", ("123.45", "23.46", "146.91")),
    # 10.05 x 10% = 1.005 -> 1.01
    ("tax-half-up-at-half-cent", ["10.00", "0.05"], "10", "USD", ("10.05", "1.01", "11.06")),
    ("tax-zero-rate", ["9.68", "125.00"], "0", "USD", ("134.68", "0.00", "134.68")),
    ("no-lines", [], "19", "USD", ("0.00", "0.00", "0.00")),
    # credit: -10.05 x 10% = -1.005 -> -1.01 (half away from zero)
    ("credit-adjustment", ["-10.05"], "10", "USD", ("-10.05", "-1.01", "-11.06")),
    # 1005 JPY x 10% = 100.5 -> 101
    ("jpy-tax", ["1000", "5"], "10", "JPY", ("1005", "101", "1106")),
    # 1.234 KWD x 5% = 0.0617 -> 0.062
    ("kwd-tax", ["1.234"], "5", "KWD", ("1.234", "0.062", "1.296")),
    # fractional rate: 200.00 x 7.25% = 14.50
    # amounts read back from a 4-decimal column: values rounded, exponent normalised
    ("stored-4-decimal-amounts", ["125.0000", "9.6800"], "0", "USD", ("134.68", "0.00", "134.68")),
    ("jpy-stored-4-decimal-amounts", ["323.0000"], "10", "JPY", ("323", "32", "355")),
    ("tax-fractional-rate", ["200.00"], "7.25", "USD", ("200.00", "14.50", "214.50")),
]


@pytest.mark.parametrize(
    ("amounts", "tax_rate", "currency", "expected"),
    [pytest.param(a, r, c, e, id=i) for i, a, r, c, e in TOTALS_TABLE],
)
def test_invoice_totals_golden_table(amounts, tax_rate, currency, expected):
    totals = invoice_totals(
        amounts=[D(a) for a in amounts], tax_rate=D(tax_rate), currency=currency
    )
    assert (str(totals.subtotal), str(totals.tax), str(totals.total)) == expected


def test_invoice_totals_rejects_unrounded_amounts():
    with pytest.raises(ValueError, match="not rounded to USD"):
        invoice_totals(amounts=[D("9.677")], tax_rate=D("19"), currency="USD")


def test_invoice_totals_rejects_float_tax_rate():
    with pytest.raises(TypeError, match="never float"):
        invoice_totals(amounts=[D("1.00")], tax_rate=19.0, currency="USD")  # type: ignore[arg-type]


def test_graduated_line_details_keep_tier_bounds_and_unrounded_amount():
    lines = rate_usage(terms=graduated(), usage_bytes=600 * GIB)
    assert lines[2].details == {
        "model": "graduated",
        "usage_bytes": 600 * GIB,
        "unit_bytes": GIB,
        "usage_gb": "600",
        "tier": 3,
        "tier_from_gb": "500",
        "tier_to_gb": None,
        "unit_price": "2.00",
        "flat_fee": "10.00",
        "units_gb": "100",
        "flat_fee_charged": "10.00",
        "unrounded": "210.00",
    }
    assert [line.description for line in lines] == [
        "Traffic, tier 1: 0 - 100 GB",
        "Traffic, tier 2: 100 - 500 GB",
        "Traffic, tier 3: over 500 GB",
    ]
    assert [line.unit_price for line in lines] == [D("0"), D("2.50"), D("2.00")]


def test_prorated_base_fee_details_keep_the_fraction_and_unrounded_amount():
    terms = flat_rate("1.00", base_fee=D("30.00"))
    (base, _usage) = rate_subscription(terms=terms, usage_bytes=0, active_days=10, period_days=31)
    assert base.details["proration"] == "10/31"
    assert base.details["unrounded"].startswith("9.677419354838709677")
    assert base.description == "Base fee (10 of 31 days)"
    assert base.unit_price is None


def test_minimum_top_up_details_explain_the_gap():
    terms = flat_rate("1.00", base_fee=D("10.00"), minimum_charge=D("50.00"))
    lines = rate_subscription(terms=terms, usage_bytes=25 * GIB, active_days=30, period_days=30)
    assert lines[-1].details["charged_before_top_up"] == "35.00"
    assert lines[-1].details["minimum"] == "50.00"
    assert subscription_amount(lines) == D("50.00")


def test_volume_pricing_drops_at_a_cheaper_tier():
    """Volume pricing is not monotonic when a higher tier is cheaper; that is the model."""
    at_100 = rate_usage(terms=volume(), usage_bytes=100 * GIB)
    at_101 = rate_usage(terms=volume(), usage_bytes=101 * GIB)
    assert subscription_amount(at_100) == D("300.00")
    assert subscription_amount(at_101) == D("207.00")  # 101 x 2.00 + 5.00


def test_package_line_counts_packages_and_keeps_gb_in_details():
    (line,) = rate_usage(terms=package(), usage_bytes=250 * GIB)
    assert (line.quantity, line.unit, line.unit_price) == (D("3"), "package", D("20.00"))
    assert line.details["usage_gb"] == "250"
    assert line.details["packages"] == "3"


def test_late_usage_adjustment_is_rerated_minus_billed():
    """150 GB billed 125.00; revised to 170 GB -> 70 x 2.50 = 175.00 -> adjustment 50.00."""
    billed = subscription_amount(rate_usage(terms=graduated(), usage_bytes=150 * GIB))
    rerated = subscription_amount(rate_usage(terms=graduated(), usage_bytes=170 * GIB))
    assert rerated - billed == D("50.00")


def test_usage_quantity_is_exact():
    assert usage_quantity(1, GIB) == D("0.000000000931322574615478515625")
    assert usage_quantity(1_610_612_736, GIB) == D("1.5")
    assert usage_quantity(1_500_000_000, GB10) == D("1.5")
    assert usage_quantity(0, GIB) == D("0")


def test_usage_total_sums_sub_accounts_and_rejects_negative_counts():
    assert usage_total([GIB, 2 * GIB, 0]) == 3 * GIB
    with pytest.raises(ValueError, match="byte count"):
        usage_total([GIB, -1])


def test_unit_note_prints_the_unit_definition():
    assert unit_note(GIB) == "1 GB = 1,073,741,824 bytes"
    assert unit_note(GB10) == "1 GB = 1,000,000,000 bytes"
