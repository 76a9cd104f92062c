"""`sub-accounts/{id}/move/`, `close/` and DELETE: the services' rules over HTTP, tenant-scoped."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import SubAccount
from accounts.sub_accounts import sub_account_close
from tests import factories
from tests.api.conftest import key_client
from tests.billing.factories import add_usage
from usage.models import UsageDay

R = "/api/v1/reseller/sub-accounts"


@pytest.fixture
def bob(reseller):
    return factories.CustomerFactory(reseller=reseller, name="Bob")


@pytest.mark.django_db
def test_move_answers_the_sub_account_with_both_holders(reseller_api, sub_account, customer, bob):
    response = reseller_api.post(
        f"{R}/{sub_account.pk}/move/", {"customer": bob.pk, "from": "2026-10-16"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["customer"], body["active_from"]) == (bob.pk, "2026-10-16")
    assert body["assignments"] == [
        {"customer": customer.pk, "starts_on": None, "ends_on": "2026-10-16"},
        {"customer": bob.pk, "starts_on": "2026-10-16", "ends_on": None},
    ]
    assert reseller_api.get(f"{R}/{sub_account.pk}/").json()["assignments"] == body["assignments"]
    moved_by = sub_account.assignments.get().moved_by
    assert moved_by.startswith("api-key ")


@pytest.mark.django_db
def test_another_resellers_sub_account_is_a_404_and_its_customer_reads_like_a_missing_one(
    reseller_api, sub_account
):
    foreign_sub = factories.SubAccountFactory()
    foreign_customer = foreign_sub.customer
    for path, body in (
        (
            f"{R}/{foreign_sub.pk}/move/",
            {"customer": sub_account.customer_id, "from": "2026-10-16"},
        ),
        (f"{R}/{foreign_sub.pk}/close/", {}),
    ):
        assert reseller_api.post(path, body, format="json").status_code == 404
    assert reseller_api.delete(f"{R}/{foreign_sub.pk}/").status_code == 404

    missing = reseller_api.post(
        f"{R}/{sub_account.pk}/move/", {"customer": 999_999, "from": "2026-10-16"}, format="json"
    )
    foreign = reseller_api.post(
        f"{R}/{sub_account.pk}/move/",
        {"customer": foreign_customer.pk, "from": "2026-10-16"},
        format="json",
    )
    assert foreign.status_code == missing.status_code == 400
    assert foreign.json()["extra"]["fields"]["customer"] == [
        message.replace("999999", str(foreign_customer.pk))
        for message in missing.json()["extra"]["fields"]["customer"]
    ]
    assert SubAccount.objects.get(pk=foreign_sub.pk).customer == foreign_customer


@pytest.mark.django_db
def test_move_needs_a_customer_and_a_day_and_refuses_the_current_holder(reseller_api, sub_account):
    empty = reseller_api.post(f"{R}/{sub_account.pk}/move/", {}, format="json")
    assert set(empty.json()["extra"]["fields"]) == {"customer", "from"}
    same = reseller_api.post(
        f"{R}/{sub_account.pk}/move/",
        {"customer": sub_account.customer_id, "from": "2026-10-16"},
        format="json",
    )
    assert same.status_code == 400
    assert list(same.json()["extra"]["fields"]) == ["customer"]


@pytest.mark.django_db
def test_close_defaults_to_today_in_the_resellers_timezone(reseller_api, reseller, sub_account):
    reseller.timezone = "Pacific/Kiritimati"  # UTC+14: often a day ahead of UTC
    reseller.save()
    today = timezone.now().astimezone(reseller.tzinfo).date()

    response = reseller_api.post(f"{R}/{sub_account.pk}/close/", {}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["active_to"]) == ("closed", today.isoformat())
    assert body["assignments"][-1]["ends_on"] == (today + dt.timedelta(days=1)).isoformat()
    again = reseller_api.post(f"{R}/{sub_account.pk}/close/", {"on": "2026-10-20"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "sub_account_closed")


@pytest.mark.django_db
def test_patch_no_longer_sets_the_dates_or_closes(reseller_api, sub_account):
    dates = reseller_api.patch(
        f"{R}/{sub_account.pk}/", {"active_from": "2026-10-01", "active_to": None}, format="json"
    )
    assert dates.json()["extra"]["fields"] == {
        "active_from": ["This field cannot be changed."],
        "active_to": ["This field cannot be changed."],
    }
    closing = reseller_api.patch(f"{R}/{sub_account.pk}/", {"status": "closed"}, format="json")
    assert closing.status_code == 400
    assert "close action" in closing.json()["extra"]["fields"]["status"][0]

    sub_account_close(sub_account=sub_account, on_day=dt.date(2026, 10, 20))
    reopen = reseller_api.patch(f"{R}/{sub_account.pk}/", {"status": "active"}, format="json")
    assert (reopen.status_code, reopen.json()["code"]) == (409, "sub_account_closed")
    label = reseller_api.patch(f"{R}/{sub_account.pk}/", {"label": "old pool"}, format="json")
    assert label.status_code == 200


@pytest.mark.django_db
def test_delete_is_204_for_a_typo_and_409_once_there_is_usage(reseller_api, sub_account):
    typo = factories.SubAccountFactory(
        customer=sub_account.customer, upstream_account=sub_account.upstream_account
    )
    UsageDay.objects.create(sub_account=typo, day=dt.date(2026, 10, 1), bytes=0)
    add_usage(sub_account, dt.date(2026, 10, 1), 1, 10)

    assert reseller_api.delete(f"{R}/{typo.pk}/").status_code == 204
    refused = reseller_api.delete(f"{R}/{sub_account.pk}/")

    assert (refused.status_code, refused.json()["code"]) == (409, "sub_account_has_usage")
    assert list(SubAccount.objects.values_list("pk", flat=True)) == [sub_account.pk]


@pytest.mark.django_db
def test_a_customer_key_cannot_move_close_or_delete(sub_account, bob):
    raw_key = api_key_create(
        reseller=sub_account.customer.reseller, name="shop", customer=sub_account.customer
    )[1]
    client = key_client(raw_key)
    for response in (
        client.post(f"{R}/{sub_account.pk}/move/", {"customer": bob.pk, "from": "2026-10-16"}),
        client.post(f"{R}/{sub_account.pk}/close/", {}),
        client.delete(f"{R}/{sub_account.pk}/"),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "reseller_key_required")
    assert SubAccount.objects.get(pk=sub_account.pk).status == SubAccount.Status.ACTIVE
