"""Hostile-input drill, issue 15 item 6: numbers and images that used to answer 500.

- Money: `"1e400"`, `"1E+999999"`, `"1_0"`, Arabic-Indic and fullwidth digits and other text
  Python's `Decimal` reads but a person would not write are refused by the one money parser
  (`core.money.parse_amount`) in every money input: credit note amounts and line amounts
  (API and admin form), plan prices and tiers (API and admin), a customer's tax rate, an
  upstream's cost per GB, an alert rule's quota. The API answers 400 `invalid_amount` naming
  the field; the admin shows the refusal on the field. Nothing is stored.
- Images: a PNG whose header claims 30000x30000 pixels is a 400 naming `logo` on the API
  (it was Pillow's `DecompressionBombError`, a 500) and a form error in the admin, through the
  one logo check.
- Integers: every id or count in a query string or body beyond the database's BigInteger
  range is a 400 naming the parameter (`?event=evt_9999999999999999999` was an
  `OverflowError`, a 500).
"""

from __future__ import annotations

import struct
import zlib
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.urls import reverse

from accounts.admin import ResellerForm
from billing.credit_notes.models import CreditNote
from billing.models import Plan
from core.money import NOT_PLAIN
from core.query import MAX_BIGINT
from tests import factories
from tests.api.conftest import key_client
from tests.billing.test_billing_rules import admin_errors, admin_post, graduated
from tests.billing.test_credit_notes import make_issued_invoice
from tests.reliability import tally
from tests.reliability.test_hostile_input import Api, _counts, _tenant

pytestmark = pytest.mark.django_db

#: Amounts that are not plain decimal digits (each is refused with `NOT_PLAIN`).
NOT_PLAIN_AMOUNTS = [
    "1e400",
    "1E+999999",
    "1e-2",
    "1_0",
    "١٢",  # Arabic-Indic digits
    "１２",  # fullwidth digits
    "NaN",
    "Infinity",
    "0x10",
    "+5",
    "1 0",
    "1,50",
    ".5",
]
#: Amounts out of any money column's range.
TOO_BIG = ["1" * 15, "1" * 40, 10**20]
TOO_BIG_ID = 10**19  # above MAX_BIGINT (9223372036854775807)


@pytest.fixture
def tenant(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return _tenant("AA")


def _invalid_amount(api: Api, key, method, path, body, field: str) -> dict:
    body = api.refused(key, method, path, body, fields=[field])
    assert body["code"] == "invalid_amount", body
    return body


# --- money -----------------------------------------------------------------------------------


def test_credit_note_amounts_that_are_not_plain_decimals_are_400_invalid_amount(tenant):
    api, key = Api(), tenant.reseller_key
    url = f"/api/v1/reseller/invoices/{tenant.issued.pk}/credit-notes/"
    line = tenant.issued.lines.order_by("position").first()
    for value in [*NOT_PLAIN_AMOUNTS, *TOO_BIG, "10.005", 1.5]:
        body = _invalid_amount(api, key, "post", url, {"amount": value}, "amount")
        assert body["extra"]["fields"]["amount"][0]
        body = _invalid_amount(
            api, key, "post", url, {"lines": [{"line": line.pk, "amount": value}]}, "lines"
        )
        assert "amount" in body["extra"]["fields"]["lines"]["0"]
    body = _invalid_amount(api, key, "post", url, {"amount": "1e400"}, "amount")
    assert body["extra"]["fields"] == {"amount": [NOT_PLAIN]}
    assert body["message"] == f"amount: {NOT_PLAIN}"

    # A zero-decimal currency: JPY 10.5 is refused before the service sees it.
    jpy = make_issued_invoice(tenant.customer, amounts=("1000",), currency="JPY")
    jpy_url = f"/api/v1/reseller/invoices/{jpy.pk}/credit-notes/"
    body = _invalid_amount(api, key, "post", jpy_url, {"amount": "10.5"}, "amount")
    assert body["extra"]["fields"]["amount"] == ["No decimal places allowed here (a whole number)."]
    assert not CreditNote.objects.exists()
    ok = api.call(key, "post", jpy_url, {"amount": "10"})
    assert ok.status_code == 201 and ok.json()["total"] == "10", ok.content
    tally.add("hostile_requests", len(api.sent))


def test_the_admin_credit_note_form_refuses_hostile_amounts_on_the_field(tenant, client):
    client.force_login(factories.StaffUserFactory(reseller=tenant.reseller))
    url = reverse("admin:billing_creditnote_add") + f"?invoice={tenant.issued.pk}"
    for value in [*NOT_PLAIN_AMOUNTS, "1" * 15, "10.005"]:
        response = client.post(url, {"amount": value, "reason": "", "memo": ""})
        assert response.status_code == 200, (value, response.status_code)
        errors = response.context["form"].errors
        assert list(errors) == ["amount"], (value, errors)
    assert response.context["form"].errors["amount"] == ["At most 2 decimal places."]
    assert not CreditNote.objects.exists()
    response = client.post(url, {"amount": "1.00", "reason": "", "memo": ""})
    assert response.status_code == 302
    assert CreditNote.objects.get().total == Decimal("1.00")


@pytest.mark.slow
def test_every_money_input_of_the_api_refuses_what_is_not_a_plain_decimal(tenant):
    api, key = Api(), tenant.reseller_key
    before = _counts()
    plans = "/api/v1/reseller/plans/"
    package = {
        "code": "p",
        "name": "P",
        "base_fee": "5.00",
        "pricing_model": "package",
        "package_size": "10",
        "package_price": "3.00",
    }
    tiered = graduated(tiers=[{"up_to": "100", "unit_price": "0"}, {"unit_price": "2.50"}])
    alert = {"customer": tenant.customer.pk, "quota_gb": "500", "percent": 80}
    customer_url = f"/api/v1/reseller/customers/{tenant.customer.pk}/"
    for value in [*NOT_PLAIN_AMOUNTS, *TOO_BIG]:
        for name in ("base_fee", "minimum_charge", "package_size", "package_price"):
            _invalid_amount(api, key, "post", plans, {**package, name: value}, name)
        for name in ("up_to", "unit_price", "flat_fee"):
            tiers = [{"up_to": "100", "unit_price": "0", name: value}, {"unit_price": "1"}]
            _invalid_amount(api, key, "post", plans, {**tiered, "tiers": tiers}, "tiers")
        _invalid_amount(
            api,
            key,
            "post",
            "/api/v1/reseller/customers/",
            {"name": "N", "email": "n@example.com", "tax_rate": value},
            "tax_rate",
        )
        _invalid_amount(api, key, "patch", customer_url, {"tax_rate": value}, "tax_rate")
        _invalid_amount(
            api,
            key,
            "post",
            "/api/v1/reseller/upstream-accounts/",
            {"name": "u", "provider": "bytesflows", "cost_per_gb": value},
            "cost_per_gb",
        )
        _invalid_amount(
            api,
            key,
            "post",
            "/api/v1/reseller/usage-alert-rules/",
            {**alert, "quota_gb": value},
            "quota_gb",
        )
    # Out of the column or the business range, in a plain form: still `invalid_amount`.
    for body, field in (
        ({"name": "N", "email": "n@example.com", "tax_rate": "100.5"}, "tax_rate"),
        ({"name": "N", "email": "n@example.com", "tax_rate": "19.00001"}, "tax_rate"),
        ({"name": "N", "email": "n@example.com", "tax_rate": "-5"}, "tax_rate"),
    ):
        _invalid_amount(api, key, "post", "/api/v1/reseller/customers/", body, field)
    # The plan rules keep their own code for what is a rule, not a malformed number.
    body = api.refused(key, "post", plans, {**package, "base_fee": "-1"}, fields=["base_fee"])
    assert body["code"] == "invalid_plan"
    assert _counts() == before
    created = api.call(key, "post", plans, {**package, "code": "fine", "base_fee": "5.5"})
    assert created.status_code == 201 and created.json()["base_fee"] == "5.500000"
    tally.add("hostile_requests", len(api.sent))


def test_the_plan_admin_refuses_hostile_prices_on_the_field_and_the_tier_row(tenant, client):
    client.force_login(factories.StaffUserFactory(reseller=tenant.reseller))
    url = reverse("admin:billing_plan_add")
    count = Plan.objects.count()
    for value in ("1e400", "1_0", "١٢", "1" * 15):
        plan = graduated(code="admin-plan", base_fee=value)
        errors = admin_errors(client.post(url, admin_post(plan, tenant.reseller)))
        assert list(errors) == ["base_fee"], (value, errors)
        plan = graduated(
            code="admin-plan", tiers=[{"up_to": "100", "unit_price": value}, {"unit_price": "1"}]
        )
        errors = admin_errors(client.post(url, admin_post(plan, tenant.reseller)))
        assert list(errors) == ["tiers[0].unit_price"], (value, errors)
    assert errors["tiers[0].unit_price"] in (
        [NOT_PLAIN],
        ["At most 14 digits before the decimal point."],
    )
    assert Plan.objects.count() == count


# --- images ----------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose IHDR claims `width` x `height` RGB pixels (a few dozen
    bytes: the pixel data is one compressed empty row, nowhere near what the header says)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00"))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (30000, 30000, "The image is too large; at most 4000 pixels a side."),  # bomb error
        (10000, 10000, "The image is too large; at most 4000 pixels a side."),  # bomb warning
        (5000, 3000, "The logo is 5000x3000; at most 4000 pixels a side."),
    ],
)
def test_a_logo_whose_header_claims_huge_dimensions_is_refused_on_every_path(
    tenant, width, height, message
):
    data = png_claiming(width, height)
    assert len(data) < 100
    upload = SimpleUploadedFile("logo.png", data, content_type="image/png")
    response = key_client(tenant.reseller_key).put(
        "/api/v1/reseller/settings/logo/", {"logo": upload}, format="multipart"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["extra"]["fields"]["logo"] == [message]

    form_data = model_to_dict(tenant.reseller, exclude=["logo"])
    admin_upload = SimpleUploadedFile("logo.png", data, content_type="image/png")
    form = ResellerForm(data=form_data, files={"logo": admin_upload}, instance=tenant.reseller)
    assert not form.is_valid()
    assert form.errors["logo"] == [message]
    tenant.reseller.refresh_from_db()
    assert not tenant.reseller.logo


def test_the_admin_change_page_refuses_a_decompression_bomb_logo(tenant, client):
    client.force_login(factories.StaffUserFactory(reseller=tenant.reseller))
    url = reverse("admin:accounts_reseller_change", args=[tenant.reseller.pk])
    data = {
        k: v for k, v in model_to_dict(tenant.reseller, exclude=["logo"]).items() if v is not None
    }
    data["logo"] = SimpleUploadedFile("logo.png", png_claiming(30000, 30000), "image/png")
    response = client.post(url, data)
    assert response.status_code == 200, response.status_code
    assert response.context["adminform"].form.errors["logo"] == [
        "The image is too large; at most 4000 pixels a side."
    ]


# --- integers --------------------------------------------------------------------------------


def test_integer_query_parameters_beyond_bigint_are_400_naming_the_parameter(tenant):
    api, key = Api(), tenant.reseller_key
    r = "/api/v1/reseller"
    usage_range = {"from": "2026-03-01", "to": "2026-03-31"}
    cases = [
        (f"{r}/webhook-deliveries/", {"event": "evt_9999999999999999999"}, "event"),
        (f"{r}/webhook-deliveries/", {"endpoint": TOO_BIG_ID}, "endpoint"),
        (f"{r}/subscriptions/", {"customer": TOO_BIG_ID}, "customer"),
        (f"{r}/subscriptions/", {"plan": TOO_BIG_ID}, "plan"),
        (f"{r}/invoices/", {"customer": TOO_BIG_ID}, "customer"),
        (f"{r}/invoices/preview/", {"customer": TOO_BIG_ID, "period": "2026-03"}, "customer"),
        (f"{r}/sub-accounts/", {"customer": TOO_BIG_ID}, "customer"),
        (f"{r}/sync-runs/", {"upstream_account": TOO_BIG_ID}, "upstream_account"),
        (f"{r}/usage-alert-rules/", {"customer": TOO_BIG_ID}, "customer"),
        (f"{r}/usage/", {**usage_range, "customer": TOO_BIG_ID}, "customer"),
    ]
    for path in (
        f"{r}/customers/",
        f"{r}/invoices/",
        f"{r}/credit-notes/",
        f"{r}/webhook-deliveries/",
        f"{r}/webhook-events/",
        "/api/v1/invoices/",
    ):
        cases += [(path, {"offset": 10**30}, "offset"), (path, {"limit": 10**30}, "limit")]
    for path, query, name in cases:
        k = tenant.customer_key if path.startswith("/api/v1/invoices") else key
        body = api.refused(k, "get", path, query, fields=[name])
        assert body["code"] == "validation_error"
        assert name in body["extra"]["fields"], (path, body)

    # The largest id is a valid filter (nothing matches), a huge limit is capped.
    response = api.call(key, "get", f"{r}/webhook-deliveries/", {"event": f"evt_{MAX_BIGINT}"})
    assert response.status_code == 200 and response.json()["results"] == []
    assert api.call(key, "get", f"{r}/customers/", {"limit": 10**9}).status_code == 200
    # Bodies and paths: ids beyond the range are a 400 or a 404, never an overflow.
    line_body = {"lines": [{"line": TOO_BIG_ID, "amount": "1"}]}
    api.refused(
        key, "post", f"{r}/invoices/{tenant.issued.pk}/credit-notes/", line_body, fields=["line"]
    )
    api.refused(
        key,
        "post",
        f"{r}/invoices/generate/",
        {"period": "2026-03", "customer": TOO_BIG_ID},
        fields=["customer"],
    )
    for path in ("customers", "invoices", "webhook-deliveries", "credit-notes", "plans"):
        api.refused(key, "get", f"{r}/{path}/{'9' * 30}/", status=404)
    tally.add("hostile_requests", len(api.sent))
