"""One set of billing rules: the service, the admin form and the API refuse alike.

The same bad plan input is refused by `plan_create` (ApplicationError `invalid_plan` keyed by
field path), by the admin add form (errors on the field or tier row, nothing saved) and by
`POST /api/v1/reseller/plans/` (400 naming the same path in `extra.fields`).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.api_keys import api_key_create
from billing.models import Plan
from billing.plans import plan_create, plan_rules_errors, plan_update
from core.errors import ApplicationError
from core.money import NOT_PLAIN as SYNTAX
from tests import factories
from tests.api.conftest import key_client

D = Decimal
OPEN = {"up_to": None, "unit_price": "2.50"}


def graduated(**changes):
    return {
        "code": "pro",
        "name": "Pro",
        "pricing_model": "graduated",
        "base_fee": "10.00",
        "tiers": [{"up_to": "100", "unit_price": "0"}, OPEN],
        **changes,
    }


def errors_of(**plan) -> dict[str, list[str]]:
    return plan_rules_errors(
        pricing_model=plan.get("pricing_model", "graduated"),
        currency=plan.get("currency", "USD"),
        base_fee=plan.get("base_fee", D(0)),
        minimum_charge=plan.get("minimum_charge", D(0)),
        package_size=plan.get("package_size"),
        package_price=plan.get("package_price"),
        tiers=plan.get("tiers", [OPEN]),
    )


# --- the rules themselves (no database) ----------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ({"tiers": [{"up_to": "0", "unit_price": "1"}, OPEN]},
         {"tiers[0].up_to": ["Must be greater than 0."]}),
        ({"tiers": [{"up_to": "-5", "unit_price": "1"}, OPEN]},
         {"tiers[0].up_to": ["Must be greater than 0."]}),
        ({"tiers": [{"up_to": "ten", "unit_price": "1"}, OPEN]},
         {"tiers[0].up_to": [SYNTAX]}),
        ({"tiers": [{"up_to": "10", "unit_price": "1"}, {"up_to": "10", "unit_price": "1"}, OPEN]},
         {"tiers[1].up_to": ["Must be above the previous tier's bound (10)."]}),
        ({"tiers": [{"up_to": "100", "unit_price": "1"}, {"up_to": "50", "unit_price": "1"}, OPEN]},
         {"tiers[1].up_to": ["Must be above the previous tier's bound (100)."]}),
        ({"tiers": [{"up_to": "10", "unit_price": "1"}]},
         {"tiers[0].up_to": ["The last tier must be open-ended (up_to empty)."]}),
        ({"tiers": [OPEN, OPEN]},
         {"tiers[0].up_to": ["Only the last tier is open-ended; give its bound."]}),
        ({"tiers": []}, {"tiers": ["A graduated plan needs at least one tier."]}),
        ({"pricing_model": "volume", "tiers": []},
         {"tiers": ["A volume plan needs at least one tier."]}),
        ({"tiers": [{"up_to": None, "unit_price": "-1"}]},
         {"tiers[0].unit_price": ["Must not be negative."]}),
        ({"tiers": [{"up_to": None, "unit_price": "0.0000001"}]},
         {"tiers[0].unit_price": ["At most 6 decimal places."]}),
        ({"tiers": [{"up_to": None}]}, {"tiers[0].unit_price": ["This field is required."]}),
        ({"tiers": [{"up_to": None, "unit_price": "1", "flat_fee": "0.005"}]},
         {"tiers[0].flat_fee": ["USD amounts have at most 2 decimal places."]}),
        ({"currency": "JPY", "base_fee": "10.5"}, {"base_fee": ["JPY amounts have no decimals."]}),
        ({"minimum_charge": "10.505"},
         {"minimum_charge": ["USD amounts have at most 2 decimal places."]}),
        ({"base_fee": "-1"}, {"base_fee": ["Must not be negative."]}),
        ({"base_fee": 10.5}, {"base_fee": ['Give a decimal number as text, e.g. "10.50".']}),
        ({"base_fee": "1e20"}, {"base_fee": [SYNTAX]}),
        ({"base_fee": "1_0"}, {"base_fee": [SYNTAX]}),
        ({"base_fee": "١٢"}, {"base_fee": [SYNTAX]}),
        ({"base_fee": "1" * 15}, {"base_fee": ["At most 14 digits before the decimal point."]}),
        ({"currency": "usd"},
         {"currency": ["'usd' is not an ISO 4217 currency code in circulation (e.g. USD)."]}),
        ({"currency": "XYZ"},
         {"currency": ["'XYZ' is not an ISO 4217 currency code in circulation (e.g. USD)."]}),
        ({"package_size": "5"}, {"package_size": ["Only package plans have this."]}),
        ({"pricing_model": "package", "tiers": [], "package_size": "0", "package_price": "5"},
         {"package_size": ["Must be greater than 0."]}),
        ({"pricing_model": "package", "tiers": [OPEN], "package_size": "5"},
         {"tiers": ["Package plans have no tiers."],
          "package_price": ["A package plan needs a package price."]}),
        ({"pricing_model": "package", "tiers": [], "currency": "JPY", "package_size": "5",
          "package_price": "99.9"}, {"package_price": ["JPY amounts have no decimals."]}),
        ({"pricing_model": "tiered"}, {"pricing_model": ["One of graduated, volume, package."]}),
    ],
)  # fmt: skip
def test_each_rule_names_the_field_path_it_refuses(plan, expected):
    assert errors_of(**plan) == expected


@pytest.mark.parametrize(
    "plan",
    [
        {"tiers": [{"up_to": "0.5", "unit_price": "0"}, {"up_to": None, "unit_price": "1.234567"}]},
        {"currency": "JPY", "base_fee": "1000", "minimum_charge": "500"},
        {"currency": "KWD", "base_fee": "5.125"},
        {"pricing_model": "package", "tiers": [], "package_size": "0.5", "package_price": "3"},
        {"base_fee": 10, "minimum_charge": D("10.50")},
    ],
)
def test_valid_plans_pass_every_rule(plan):
    assert errors_of(**plan) == {}


# --- the service ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_plan_create_reports_every_broken_rule_and_saves_nothing(reseller):
    with pytest.raises(ApplicationError) as exc:
        plan_create(
            reseller=reseller,
            code="bad code",
            name="Bad",
            pricing_model="graduated",
            currency="JPY",
            base_fee="10.5",
            tiers=[{"up_to": "0", "unit_price": "1"}, {"up_to": "5", "unit_price": "1"}],
        )
    assert exc.value.code == "invalid_plan"
    assert set(exc.value.extra) == {"code", "base_fee", "tiers[0].up_to", "tiers[1].up_to"}
    assert not Plan.objects.exists()


@pytest.mark.django_db
def test_plan_create_takes_text_numbers_as_the_api_and_admin_give_them(reseller):
    plan = plan_create(reseller=reseller, **graduated(currency="JPY", base_fee="1000"))
    assert (plan.currency, plan.base_fee) == ("JPY", D("1000"))
    assert [(t.position, t.up_to, t.unit_price) for t in plan.tiers.order_by("position")] == [
        (1, D("100"), D("0")),
        (2, None, D("2.5")),
    ]


@pytest.mark.django_db
def test_plan_update_refuses_every_fixed_field_and_changes_name_and_status(reseller):
    plan = plan_create(reseller=reseller, **graduated())
    with pytest.raises(ApplicationError) as exc:
        plan_update(plan=plan, name="New", base_fee=D("1"), currency="EUR")
    assert exc.value.code == "plan_price_immutable"
    assert set(exc.value.extra) == {"base_fee", "currency"}
    plan.refresh_from_db()
    assert (plan.name, plan.base_fee, plan.currency) == ("Pro", D("10"), "USD")
    plan_update(plan=plan, name="Pro 2027", is_active=False)
    plan.refresh_from_db()
    assert (plan.name, plan.is_active) == ("Pro 2027", False)


# --- the same input through service, admin and API ----------------------------------------

CASES = {
    "zero-bound": (graduated(tiers=[{"up_to": "0", "unit_price": "1"}, OPEN]), "tiers[0].up_to"),
    "no-tiers": (graduated(tiers=[]), "tiers"),
    "jpy-base-fee": (graduated(currency="JPY", base_fee="10.5"), "base_fee"),
    # Once only (the rules' message), not again by the model: no second rule in Plan.clean().
    "package-without-size": (
        graduated(pricing_model="package", tiers=[], package_price="5.00"),
        "package_size",
    ),
    "duplicate-bound": (
        graduated(
            tiers=[{"up_to": "10", "unit_price": "1"}, {"up_to": "10", "unit_price": "1"}, OPEN]
        ),
        "tiers[1].up_to",
    ),
}


def admin_post(plan: dict, reseller) -> dict:
    """The admin add form's POST for `plan` (tier rows as the inline posts them)."""
    tiers = plan.get("tiers", [])
    data = {
        "reseller": reseller.pk,
        "code": plan["code"],
        "name": plan["name"],
        "currency": plan.get("currency", "USD"),
        "pricing_model": plan["pricing_model"],
        "unit_bytes": 1_073_741_824,
        "base_fee": plan.get("base_fee", "0"),
        "minimum_charge": plan.get("minimum_charge", "0"),
        "package_size": plan.get("package_size", ""),
        "package_price": plan.get("package_price", ""),
        "is_active": "on",
        "tiers-TOTAL_FORMS": len(tiers),
        "tiers-INITIAL_FORMS": 0,
        "tiers-MIN_NUM_FORMS": 0,
        "tiers-MAX_NUM_FORMS": 1000,
    }
    for index, tier in enumerate(tiers):
        for name in ("up_to", "unit_price", "flat_fee"):
            value = tier.get(name)
            data[f"tiers-{index}-{name}"] = (
                ("0" if name == "flat_fee" else "") if value is None else value
            )
    return data


def admin_errors(response) -> dict[str, list[str]]:
    """Errors of the re-rendered admin add form, keyed like the service's field paths."""
    assert response.status_code == 200, response.status_code
    out = dict(response.context["adminform"].form.errors)
    formset = response.context["inline_admin_formsets"][0].formset
    if formset.non_form_errors():
        out["tiers"] = list(formset.non_form_errors())
    for index, form_errors in enumerate(formset.errors):
        for name, messages in form_errors.items():
            out[f"tiers[{index}].{name}"] = list(messages)
    return out


@pytest.fixture
def reseller_api(reseller):
    return key_client(api_key_create(reseller=reseller, name="rules")[1])


@pytest.fixture
def staff_client(client, reseller):
    client.force_login(factories.StaffUserFactory(reseller=reseller))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(CASES))
def test_the_same_bad_plan_is_refused_alike_by_service_admin_and_api(
    case, reseller, reseller_api, staff_client
):
    plan, path = CASES[case]
    with pytest.raises(ApplicationError) as exc:
        plan_create(reseller=reseller, **plan)
    service = exc.value.extra
    assert exc.value.code == "invalid_plan" and path in service

    response = reseller_api.post("/api/v1/reseller/plans/", plan, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_plan"
    assert body["extra"]["fields"] == service

    response = staff_client.post(reverse("admin:billing_plan_add"), admin_post(plan, reseller))
    assert admin_errors(response).get(path) == service[path], admin_errors(response)
    assert not Plan.objects.exists()


@pytest.mark.django_db
def test_reseller_staff_create_a_plan_with_tiers_in_the_admin(staff_client, reseller):
    page = staff_client.get(reverse("admin:billing_plan_add"))
    assert page.status_code == 200
    assert 'name="tiers-TOTAL_FORMS"' in page.content.decode()
    plan = graduated(
        tiers=[{"up_to": "100", "unit_price": "0"}, {"up_to": None, "unit_price": "2.50"}]
    )
    response = staff_client.post(reverse("admin:billing_plan_add"), admin_post(plan, reseller))
    assert response.status_code == 302, admin_errors(response)
    created = Plan.objects.get()
    assert (created.reseller, created.code, created.base_fee) == (reseller, "pro", D("10"))
    assert [(t.position, t.up_to, t.unit_price) for t in created.tiers.order_by("position")] == [
        (1, D("100"), D("0")),
        (2, None, D("2.5")),
    ]


@pytest.mark.django_db
def test_admin_shows_prices_read_only_and_only_renames(staff_client, reseller):
    plan = plan_create(reseller=reseller, **graduated())
    url = reverse("admin:billing_plan_change", args=[plan.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="base_fee"' not in page and 'name="tiers-0-unit_price"' not in page
    assert "2.500000" in page  # the tiers are shown, read-only
    response = staff_client.post(
        url,
        {
            "name": "Pro 2027",
            "is_active": "on",
            "base_fee": "1.00",
            "currency": "EUR",
            "tiers-TOTAL_FORMS": 2,
            "tiers-INITIAL_FORMS": 2,
            "tiers-MIN_NUM_FORMS": 0,
            "tiers-MAX_NUM_FORMS": 1000,
        },
    )
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.name, plan.base_fee, plan.currency) == ("Pro 2027", D("10"), "USD")
    assert [t.unit_price for t in plan.tiers.order_by("position")] == [D("0"), D("2.5")]


@pytest.mark.django_db
def test_admin_refuses_a_graduated_plan_without_tiers(staff_client, reseller):
    response = staff_client.post(
        reverse("admin:billing_plan_add"), admin_post(graduated(tiers=[]), reseller)
    )
    assert admin_errors(response) == {"tiers": ["A graduated plan needs at least one tier."]}
    assert not Plan.objects.exists()
