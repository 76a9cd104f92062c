"""A customer's `cc_emails`: at most 5 addresses (they get every document in Cc), one rule
for the services, the API and the admin form, and the admin says so."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.services import customer_create, customer_update

SIX = ", ".join(f"cc{n}@globex.example" for n in range(6))
FIVE = ", ".join(f"cc{n}@globex.example" for n in range(5))
MESSAGE = "At most 5 further billing emails (6 given)."

pytestmark = pytest.mark.django_db


def test_the_services_take_five_and_refuse_six(reseller, customer):
    assert customer_update(customer=customer, cc_emails=FIVE).cc_emails == FIVE
    with pytest.raises(ValidationError) as refused:
        customer_update(customer=customer, cc_emails=SIX)
    assert refused.value.message_dict == {"cc_emails": [MESSAGE]}
    with pytest.raises(ValidationError):
        customer_create(reseller=reseller, name="X", email="x@x.example", cc_emails=SIX)


def test_the_admin_form_says_at_most_5_and_refuses_six(client, reseller, customer):
    from tests import factories

    client.force_login(factories.StaffUserFactory(reseller=reseller))
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    page = client.get(url).content.decode()
    assert "at most 5" in page
    data = {
        "reseller": reseller.pk,
        "name": customer.name,
        "email": customer.email,
        "cc_emails": SIX,
        "tax_rate": "0",
        "currency": "USD",
        "status": "active",
    }
    response = client.post(url, data)
    assert response.status_code == 200 and MESSAGE in response.content.decode()
    customer.refresh_from_db()
    assert customer.cc_emails == ""
