"""Credit note API: issue (201/400/404/409), read, PDF, and tenant isolation for every key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from billing.credit_notes.models import CreditNote
from billing.credit_notes.services import credit_note_create
from billing.invoicing.voiding import invoice_void
from tests.api.conftest import key_client
from tests.api.test_isolation import MISSING_ID, assert_clean, response_text
from tests.billing.test_credit_notes import make_draft_invoice, make_issued_invoice

R = "/api/v1/reseller"
NOW = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)


@pytest.fixture
def invoice(customer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return make_issued_invoice(customer)  # 100.00 + 50.00, 20% tax: 180.00


def _post(api, invoice, body):
    return api.post(f"{R}/invoices/{invoice.pk}/credit-notes/", body, format="json")


def test_create_partial_credit_returns_201_with_the_note(reseller_api, invoice, customer):
    response = _post(reseller_api, invoice, {"amount": "60.00", "reason": "order_change"})
    assert response.status_code == 201, response.content
    body = response.json()
    note = CreditNote.objects.get()
    assert body["id"] == note.pk and body["number"] == note.number
    assert body["invoice"] == invoice.pk and body["invoice_number"] == invoice.number
    assert (body["subtotal"], body["tax"], body["total"]) == ("50.00", "10.00", "60.00")
    assert body["reason"] == "order_change" and body["customer"] == customer.pk
    assert body["lines"][0]["invoice_line"] is None
    assert CreditNote.objects.get().created_by.startswith("api-key ")
    # the invoice now shows what was credited and what is still due
    detail = reseller_api.get(f"{R}/invoices/{invoice.pk}/").json()
    assert (detail["amount_credited"], detail["balance_due"]) == ("60.00", "120.00")
    listed = reseller_api.get(f"{R}/invoices/").json()["results"]
    assert [(i["amount_credited"], i["balance_due"]) for i in listed] == [("60.00", "120.00")]


def test_full_and_line_credits_and_the_limit(reseller_api, invoice):
    first = invoice.lines.order_by("position").first()
    response = _post(reseller_api, invoice, {"lines": [{"line": first.pk, "amount": "40.00"}]})
    assert response.status_code == 201
    assert response.json()["lines"][0] == {
        "id": response.json()["lines"][0]["id"],
        "invoice_line": first.pk,
        "description": "Line 1",
        "amount": "40.00",
        "tax": "8.00",
        "total": "48.00",
    }
    over = _post(reseller_api, invoice, {"amount": "132.01"})
    assert over.status_code == 409
    assert over.json()["code"] == "credit_exceeds_invoice"
    assert over.json()["extra"] == {"remaining": "132.00", "requested": "132.01"}
    line_over = _post(reseller_api, invoice, {"lines": [{"line": first.pk, "amount": "60.01"}]})
    assert (line_over.status_code, line_over.json()["code"]) == (409, "credit_exceeds_line")
    full = _post(reseller_api, invoice, {})
    assert full.status_code == 201 and full.json()["total"] == "132.00"
    again = _post(reseller_api, invoice, {})
    assert (again.status_code, again.json()["code"]) == (409, "credit_exceeds_invoice")
    notes = reseller_api.get(f"{R}/invoices/{invoice.pk}/credit-notes/").json()
    assert notes["count"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "abc"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"lines": []}, "lines"),
        ({"lines": [{"line": MISSING_ID, "amount": "1"}]}, "lines"),
        ({"lines": [{"amount": "1"}]}, "lines"),
        ({"reason": "bored"}, "reason"),
        ({"memo": "x" * 501}, "memo"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_400_naming_the_field(reseller_api, invoice, body, field):
    response = _post(reseller_api, invoice, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["extra"]["fields"]
    assert not CreditNote.objects.exists()


def test_amount_with_lines_answers_the_services_code(reseller_api, invoice):
    line = invoice.lines.first()
    body = {"amount": "1.00", "lines": [{"line": line.pk, "amount": "1.00"}]}
    response = _post(reseller_api, invoice, body)
    assert response.status_code == 400
    assert response.json() == {
        "code": "credit_amount_and_lines",
        "message": "Give either amount or lines, not both.",
        "extra": {"fields": {"non_field_errors": ["Give either amount or lines, not both."]}},
    }
    assert not CreditNote.objects.exists()


def test_draft_and_void_invoices_are_409(reseller_api, customer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    voided = invoice_void(
        invoice=make_issued_invoice(customer, period_start=dt.date(2026, 9, 1)), now=NOW
    )
    for invoice in (make_draft_invoice(customer), voided):
        response = _post(reseller_api, invoice, {})
        assert (response.status_code, response.json()["code"]) == (409, "invoice_not_creditable")
        assert response.json()["extra"] == {"status": invoice.status}


def test_voiding_a_credited_invoice_is_409(reseller_api, invoice):
    assert _post(reseller_api, invoice, {"amount": "1.00"}).status_code == 201
    response = reseller_api.post(f"{R}/invoices/{invoice.pk}/void/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "invoice_has_credit_notes")


def test_idempotency_key_returns_the_same_note(reseller_api, invoice):
    body = {"amount": "60.00", "idempotency_key": "order-42-refund"}
    first = _post(reseller_api, invoice, body)
    second = _post(reseller_api, invoice, body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert CreditNote.objects.count() == 1


def test_creating_emails_the_customer_unless_told_not_to(
    reseller_api, invoice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _post(reseller_api, invoice, {"amount": "1.00", "send_email": False})
        _post(reseller_api, invoice, {"amount": "2.00"})
    assert len(mail.outbox) == 1 and "USD 2.00" in mail.outbox[0].subject


def test_pdf_endpoints_answer_the_credit_note(reseller_api, invoice):
    note_id = _post(reseller_api, invoice, {"amount": "60.00"}).json()["id"]
    response = reseller_api.get(f"{R}/credit-notes/{note_id}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = response_text(response)
    assert "CREDIT NOTE" in text and invoice.number in text and "USD 60.00" in text
    invoice_pdf = response_text(reseller_api.get(f"{R}/invoices/{invoice.pk}/pdf/"))
    assert "Amount credited" in invoice_pdf and "Balance due" in invoice_pdf


# --- isolation: two resellers x two customers, every endpoint, every key ---------------------


@pytest.fixture
def credited_world(world):
    """Each tenant's finalized September invoices get one credit note of 1.00 each."""
    for tenant in world.tenants:
        tenant.notes = [
            credit_note_create(invoice=inv, amount=Decimal("1.00"), now=NOW, send_email=False)
            for inv in tenant.issued
        ]
    return world


def _reseller_urls(tenant):
    urls = [f"{R}/credit-notes/"]
    for note in tenant.notes:
        urls += [f"{R}/credit-notes/{note.pk}/", f"{R}/credit-notes/{note.pk}/pdf/"]
    urls += [f"{R}/invoices/{inv.pk}/credit-notes/" for inv in tenant.issued]
    return urls


def _customer_urls(tenant, index):
    note, invoice = tenant.notes[index], tenant.issued[index]
    return [
        "/api/v1/credit-notes/",
        f"/api/v1/credit-notes/{note.pk}/",
        f"/api/v1/credit-notes/{note.pk}/pdf/",
        f"/api/v1/invoices/{invoice.pk}/credit-notes/",
    ]


def test_every_key_sees_its_own_credit_notes_and_404s_on_everything_else(credited_world):
    world = credited_world
    all_reseller_urls = {t.reseller.pk: _reseller_urls(t) for t in world.tenants}
    for label, raw_key, tenant, customer in world.api_keys():
        client = key_client(raw_key)
        if customer is None:
            own = all_reseller_urls[tenant.reseller.pk]
            foreign = [
                u
                for t, urls in all_reseller_urls.items()
                if t != tenant.reseller.pk
                for u in urls
                if "/credit-notes/" in u and not u.endswith(f"{R}/credit-notes/")
            ]
            listed = client.get(f"{R}/credit-notes/").json()
            assert sorted(n["id"] for n in listed["results"]) == sorted(n.pk for n in tenant.notes)
        else:
            index = tenant.customers.index(customer)
            own = _customer_urls(tenant, index)
            foreign = [
                u
                for t in world.tenants
                for i in range(len(t.customers))
                if (t, i) != (tenant, index)
                for u in _customer_urls(t, i)[1:]
            ]
            listed = client.get("/api/v1/credit-notes/").json()
            assert [n["id"] for n in listed["results"]] == [tenant.notes[index].pk], label
        for url in own:
            response = client.get(url)
            assert response.status_code == 200, (label, url, response.content)
            assert_clean(response, tenant, world)
        missing = client.get(f"/api/v1/credit-notes/{MISSING_ID}/").json() if customer else None
        for url in foreign:
            response = client.get(url)
            assert response.status_code == 404, (label, url)
            if missing is not None:
                assert response.json() == missing
        # the wrong scope: a customer key on reseller endpoints, a reseller key on customer ones
        wrong = f"{R}/credit-notes/" if customer else "/api/v1/credit-notes/"
        assert client.get(wrong).status_code == 403, label


def test_creating_on_a_foreign_or_missing_invoice_is_404(credited_world):
    alpha, bravo = credited_world.tenants
    client = key_client(alpha.reseller_key)
    count = CreditNote.objects.count()
    for invoice_id in (bravo.issued[0].pk, MISSING_ID):
        response = client.post(f"{R}/invoices/{invoice_id}/credit-notes/", {}, format="json")
        assert response.status_code == 404
    # a customer key cannot issue one at all
    customer = key_client(alpha.customer_keys[0])
    response = customer.post(
        f"/api/v1/invoices/{alpha.issued[0].pk}/credit-notes/", {}, format="json"
    )
    assert response.status_code == 405
    assert CreditNote.objects.count() == count


def test_a_foreign_invoice_line_is_400_like_a_missing_one(credited_world):
    alpha, bravo = credited_world.tenants
    client = key_client(alpha.reseller_key)
    url = f"{R}/invoices/{alpha.issued[0].pk}/credit-notes/"
    foreign_line = bravo.issued[0].lines.first().pk
    bodies = [
        client.post(url, {"lines": [{"line": i, "amount": "0.01"}]}, format="json")
        for i in (foreign_line, MISSING_ID)
    ]
    assert [b.status_code for b in bodies] == [400, 400]
    assert bodies[0].json()["code"] == bodies[1].json()["code"] == "invalid_lines"


def test_credit_note_list_queries_do_not_grow_with_the_notes(reseller_api, invoice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert reseller_api.get(f"{R}/credit-notes/").status_code == 200
        return len(queries)

    credit_note_create(invoice=invoice, amount=Decimal("1.00"), now=NOW, send_email=False)
    count()  # the key's first use writes its last-used time
    one = count()
    first = invoice.lines.order_by("position").first()
    for _ in range(3):
        credit_note_create(
            invoice=invoice, lines=[{"line": first.pk, "amount": "1.00"}], now=NOW, send_email=False
        )
    assert count() == one
