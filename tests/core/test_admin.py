"""The admin base that saves through services (`core.admin.ServiceSaveAdmin`)."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import Customer
from core.admin import ServiceSaveAdmin
from core.errors import ApplicationError
from tests import factories
from webhooks import admin as webhooks_admin
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db


def test_an_admin_that_declares_no_service_refuses_to_save_the_row(reseller):
    model_admin = ServiceSaveAdmin(Customer, admin.site)
    customer = Customer(reseller=reseller, name="Globex", email="ap@globex.example")

    with pytest.raises(NotImplementedError):
        model_admin.save_model(RequestFactory().post("/"), customer, form=None, change=False)
    with pytest.raises(NotImplementedError):
        model_admin.delete_model(RequestFactory().post("/"), factories.CustomerFactory())

    assert not Customer.objects.filter(name="Globex").exists()


def test_a_refusal_by_the_service_is_a_message_on_the_page_and_changes_nothing(
    client, reseller, monkeypatch
):
    endpoint, _ = webhook_endpoint_create(
        reseller=reseller, url="https://shop.example.com/hooks", enabled_events=["usage.alert"]
    )

    def refused(**kwargs):
        raise ApplicationError("endpoint_disabled", "The endpoint was disabled meanwhile.")

    monkeypatch.setattr(webhooks_admin, "webhook_endpoint_update", refused)
    client.force_login(factories.StaffUserFactory(reseller=reseller))
    url = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    data = {
        "reseller": reseller.pk,
        "url": "https://shop.example.com/hooks",
        "description": "renamed",
        "enabled_events": ["usage.alert"],
        "is_active": "on",
    }

    response = client.post(url, data, follow=True)

    assert response.redirect_chain == [(url, 302)]
    assert "Refused: The endpoint was disabled meanwhile." in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.description == ""
