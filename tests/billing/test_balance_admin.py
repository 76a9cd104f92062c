"""The customer page's balance: the panel, and the adjust / top-up / automatic top-up buttons
saving through the services (refusals shown, another reseller's customer a 404)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.balance.models import BalanceEntry
from billing.topups.models import TopUp
from tests import factories


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def staff(customer):
    return factories.StaffUserFactory(reseller=customer.reseller)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _action(customer, name):
    return reverse("admin:accounts_customer_action", args=[customer.pk, name])


def test_adjusting_the_balance_from_the_customer_page(staff_client, staff, customer):
    page = staff_client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    text = page.content.decode()
    assert page.status_code == 200 and "Adjust balance" in text and "No entries yet." in text
    staff_client.post(
        _action(customer, "adjust_balance"), {"amount": "25.00", "reason": "Goodwill"}
    )
    entry = BalanceEntry.objects.get()
    assert (entry.amount, entry.reason, entry.created_by) == (
        Decimal("25.00"),
        "Goodwill",
        staff.username,
    )
    refused = staff_client.post(
        _action(customer, "adjust_balance"), {"amount": "-30.00", "reason": "Wire"}, follow=True
    )
    assert "Refused: The balance is 25.00 USD" in refused.content.decode()
    page = staff_client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert "$25.00" in page.content.decode() and "Goodwill" in page.content.decode()
    other = factories.CustomerFactory()
    assert (
        staff_client.post(
            _action(other, "adjust_balance"), {"amount": "5", "reason": "x"}
        ).status_code
        == 404
    )


def test_issuing_a_top_up_and_an_automatic_rule_from_the_customer_page(staff_client, customer):
    staff_client.post(_action(customer, "top_up"), {"amount": "100.00"})
    top_up = TopUp.objects.get()
    assert (top_up.amount, top_up.invoice.kind, top_up.automatic) == (
        Decimal("100.00"),
        "top_up",
        False,
    )
    staff_client.post(_action(customer, "auto_top_up"), {"threshold": "10", "amount": "50"})
    assert TopUp.objects.filter(automatic=True).count() == 1
    page = staff_client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert "automatic top-up of $50.00 below $10.00" in page.content.decode()
