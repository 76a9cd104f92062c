"""PlanTerms and Tier refuse bad plans on construction, with a message saying what is wrong."""

from decimal import Decimal

import pytest

from billing.rating import PlanTerms, Tier, rate_subscription, usage_quantity

D = Decimal
OPEN = Tier(None, D("1.00"))


def _terms(**overrides):
    kwargs = {"currency": "USD", "pricing_model": "graduated", "tiers": (OPEN,)}
    kwargs.update(overrides)
    return PlanTerms(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"currency": "ABC"}, "unknown currency code"),
        ({"pricing_model": "stairstep"}, "pricing_model must be one of"),
        ({"unit_bytes": 0}, "unit_bytes must be at least 1"),
        ({"unit_bytes": -1_073_741_824}, "unit_bytes must be at least 1"),
        ({"tiers": ()}, "needs at least one tier"),
        ({"pricing_model": "volume", "tiers": ()}, "a volume plan needs at least one tier"),
        ({"tiers": (Tier(D("100"), D("1")),)}, "last tier .* must be unlimited"),
        ({"tiers": (Tier(None, D("1")), OPEN)}, "only the last tier may be unlimited"),
        (
            {"tiers": (Tier(D("500"), D("1")), Tier(D("100"), D("1")), OPEN)},
            "strictly ascending: tier 2 up_to 100 is not above 500",
        ),
        (
            {"tiers": (Tier(D("100"), D("1")), Tier(D("100"), D("1")), OPEN)},
            "strictly ascending",
        ),
        ({"base_fee": D("-1.00")}, "base_fee must not be negative"),
        ({"minimum_charge": D("-0.01")}, "minimum_charge must not be negative"),
        ({"pricing_model": "package", "tiers": ()}, "needs both package_size and package_price"),
        (
            {"pricing_model": "package", "package_size": D("100")},
            "needs both package_size and package_price",
        ),
        (
            {"pricing_model": "package", "package_size": D("0"), "package_price": D("1")},
            "package_size must be greater than 0",
        ),
        (
            {"pricing_model": "package", "package_size": D("10"), "package_price": D("-1")},
            "package_price must not be negative",
        ),
        ({"base_fee": D("Infinity")}, "must be a finite number"),
    ],
)
def test_invalid_plan_terms_raise_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        _terms(**overrides)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"up_to": D("0"), "unit_price": D("1")}, "tier up_to must be greater than 0"),
        ({"up_to": D("-5"), "unit_price": D("1")}, "tier up_to must be greater than 0"),
        ({"up_to": None, "unit_price": D("-0.01")}, "tier unit_price must not be negative"),
        ({"up_to": None, "unit_price": D("1"), "flat_fee": D("-1")}, "tier flat_fee must not be"),
    ],
)
def test_invalid_tiers_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Tier(**kwargs)


def test_float_prices_are_refused():
    with pytest.raises(TypeError, match="never float"):
        Tier(None, 2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="never float"):
        _terms(base_fee=30.0)


def test_tiers_given_as_a_list_are_frozen_into_a_tuple():
    terms = _terms(tiers=[Tier(D("100"), D("0")), OPEN])
    assert isinstance(terms.tiers, tuple)


def test_fields_of_another_model_are_ignored():
    """A plan switched from package to graduated may keep its old package columns."""
    terms = _terms(package_size=D("100"), package_price=D("20"))
    assert terms.pricing_model == "graduated"
    package = PlanTerms(
        currency="USD",
        pricing_model="package",
        tiers=(OPEN,),
        package_size=D("100"),
        package_price=D("20"),
    )
    assert package.tiers == (OPEN,)


@pytest.mark.parametrize(
    ("active_days", "period_days", "message"),
    [(32, 31, "exceeds period_days"), (-1, 31, "active_days must be at least 0"), (0, 0, "period")],
)
def test_bad_proration_days_raise_value_error(active_days, period_days, message):
    with pytest.raises(ValueError, match=message):
        rate_subscription(
            terms=_terms(), usage_bytes=0, active_days=active_days, period_days=period_days
        )


def test_negative_usage_is_refused():
    with pytest.raises(ValueError, match="usage_bytes must be at least 0"):
        usage_quantity(-1, 1_073_741_824)
