"""Issue 15, items 3-5: the last tenant-boundary gaps, tried as the attacker did.

3. Reseller staff posting platform-owned fields (currency, timezone, invoice prefix, ...) to
   their reseller's admin change page: nothing changes; the superuser can, and a prefix
   stays unique. The admin and the settings API go through one service.
4. A reseller claiming another reseller's address as `sender_email`, with Cc recipients of
   its choice and a credit note with a memo: the email is from the platform's address under
   the attacker's own name, never From the other reseller, and its Message-ID is on the
   platform's domain; at most 5 Cc.
5. A reseller key mints a customer key and revokes itself: the customer key dies with it,
   and every key says who created it.
"""

from __future__ import annotations

import datetime as dt
from email.utils import parseaddr

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import ApiKey, Reseller
from accounts.services import reseller_settings_update
from tests import factories
from tests.api.conftest import key_client

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
R = "/api/v1/reseller"
PLATFORM = "billing@flowbill.example"


@pytest.fixture(autouse=True)
def _platform(settings, tmp_path):
    settings.DEFAULT_FROM_EMAIL = f"Flowbill <{PLATFORM}>"
    settings.FLOWBILL_SENDER_DOMAINS = []
    settings.MEDIA_ROOT = tmp_path


# --- 3. platform-owned reseller fields in the admin ----------------------------------------


def _change_form(reseller: Reseller, **changes) -> dict:
    """Every field of the reseller change form, as a browser would post it, then `changes`."""
    data = {
        name: getattr(reseller, name)
        for name in (
            "name", "slug", "address", "tax_id", "currency", "timezone", "invoice_prefix",
            "payment_terms_days", "grace_period_days", "sender_email", "verified_sender_domain",
            "payment_instructions",
        )
    }  # fmt: skip
    return {**data, **changes}


def _platform_fields(reseller: Reseller) -> tuple:
    reseller.refresh_from_db()
    return (
        reseller.name,
        reseller.slug,
        reseller.currency,
        reseller.timezone,
        reseller.invoice_prefix,
        reseller.verified_sender_domain,
    )


def test_staff_posting_platform_fields_to_the_reseller_page_changes_none_of_them(client):
    mine = factories.ResellerFactory(invoice_prefix="MINE", currency="USD", timezone="UTC")
    other = factories.ResellerFactory(invoice_prefix="OTHER")
    client.force_login(factories.StaffUserFactory(reseller=mine))
    url = reverse("admin:accounts_reseller_change", args=[mine.pk])
    page = client.get(url).content.decode()
    assert 'name="tax_id"' in page
    for field in ("currency", "timezone", "invoice_prefix", "verified_sender_domain", "slug"):
        assert f'name="{field}"' not in page  # shown read-only, not an input
    before = _platform_fields(mine)

    forged = _change_form(
        mine,
        name="Other Reseller Ltd",
        slug="other-slug",
        currency="EUR",
        timezone="Asia/Tokyo",
        invoice_prefix=other.invoice_prefix,
        verified_sender_domain="victim.example",
        tax_id="DE999",
    )
    response = client.post(url, forged)

    assert response.status_code == 302  # saved: the staff-owned change only
    assert _platform_fields(mine) == before
    assert mine.tax_id == "DE999"


def test_superuser_changes_platform_fields_but_not_to_a_taken_prefix(admin_client):
    mine = factories.ResellerFactory(invoice_prefix="MINE")
    other = factories.ResellerFactory(invoice_prefix="OTHER")
    url = reverse("admin:accounts_reseller_change", args=[mine.pk])

    taken = admin_client.post(url, _change_form(mine, invoice_prefix="OTHER", currency="EUR"))
    assert taken.status_code == 200
    assert "Another reseller uses the prefix OTHER" in taken.content.decode()
    mine.refresh_from_db()
    assert (mine.invoice_prefix, mine.currency) == ("MINE", "USD")

    changes = {
        "currency": "EUR",
        "timezone": "Asia/Tokyo",
        "invoice_prefix": "NEW",
        "verified_sender_domain": "mine.example",
    }
    assert admin_client.post(url, _change_form(mine, **changes)).status_code == 302
    mine.refresh_from_db()
    assert (mine.currency, mine.timezone, mine.invoice_prefix) == ("EUR", "Asia/Tokyo", "NEW")
    assert mine.verified_sender_domain == "mine.example"
    other.refresh_from_db()
    assert other.invoice_prefix == "OTHER"


def test_one_service_holds_the_rule_for_the_api_and_the_admin():
    mine = factories.ResellerFactory(invoice_prefix="MINE")
    factories.ResellerFactory(invoice_prefix="OTHER")
    with pytest.raises(ValidationError) as refused:
        reseller_settings_update(reseller=mine, currency="EUR", timezone="Asia/Tokyo")
    assert set(refused.value.message_dict) == {"currency", "timezone"}
    with pytest.raises(ValidationError, match="Another reseller uses the prefix OTHER"):
        reseller_settings_update(reseller=mine, platform_admin=True, invoice_prefix="OTHER")
    # the same value is not a change, so staff may send it back untouched
    reseller_settings_update(reseller=mine, currency=mine.currency, tax_id="DE1")
    reseller_settings_update(reseller=mine, platform_admin=True, currency="EUR")
    mine.refresh_from_db()
    assert (mine.currency, mine.tax_id, mine.invoice_prefix) == ("EUR", "DE1", "MINE")


def test_the_settings_api_refuses_the_verified_sender_domain():
    reseller = factories.ResellerFactory()
    api = key_client(api_key_create(reseller=reseller, name="r")[1])
    response = api.patch(
        f"{R}/settings/", {"verified_sender_domain": "victim.example"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {
        "verified_sender_domain": ["This field cannot be changed."]
    }
    reseller.refresh_from_db()
    assert reseller.verified_sender_domain == ""


# --- 4. sender identity: the phishing relay --------------------------------------------------


def test_another_resellers_address_plus_cc_plus_a_memo_sends_nothing_from_it(
    django_capture_on_commit_callbacks,
):
    from tests.billing.test_credit_notes import make_issued_invoice

    victim = factories.ResellerFactory(
        name="Victim Proxies",
        sender_email="billing@victim.example",
        verified_sender_domain="victim.example",
    )
    attacker = factories.ResellerFactory(name="Mallory Ltd", sender_email="")
    customer = factories.CustomerFactory(reseller=attacker, email="target@mark.example")
    api = key_client(api_key_create(reseller=attacker, name="r")[1])

    claimed = api.patch(f"{R}/settings/", {"sender_email": victim.sender_email}, format="json")
    assert claimed.status_code == 200  # any address may be typed in ...
    assert claimed.json()["sender_email_verified"] is False  # ... and is said not to be From
    cc = [f"mark{n}@mark.example" for n in range(6)]
    too_many = api.patch(
        f"{R}/customers/{customer.pk}/", {"cc_emails": ", ".join(cc)}, format="json"
    )
    assert too_many.status_code == 400
    assert too_many.json()["extra"]["fields"]["cc_emails"] == [
        "At most 5 further billing emails (6 given)."
    ]
    five = api.patch(
        f"{R}/customers/{customer.pk}/", {"cc_emails": ", ".join(cc[:5])}, format="json"
    )
    assert five.status_code == 200
    invoice = make_issued_invoice(customer)

    with django_capture_on_commit_callbacks(execute=True):
        note = api.post(
            f"{R}/invoices/{invoice.pk}/credit-notes/",
            {"amount": "10.00", "memo": "Your account is locked: log in at evil.example"},
            format="json",
        )
    assert note.status_code == 201, note.content

    [message] = mail.outbox
    headers = message.message()
    assert parseaddr(headers["From"]) == ("Mallory Ltd", PLATFORM)
    assert headers["Sender"] is None
    assert message.to == ["target@mark.example"] and message.cc == cc[:5]
    assert message.reply_to == ["billing@victim.example"]  # replies only; never the From
    assert headers["Message-ID"].endswith("@flowbill.example>")
    assert "victim.example" not in headers["From"] + headers["Message-ID"]


def test_the_victims_own_verified_domain_is_its_from_address(django_capture_on_commit_callbacks):
    from tests.billing.test_credit_notes import make_issued_invoice

    victim = factories.ResellerFactory(
        name="Victim Proxies",
        sender_email="billing@victim.example",
        verified_sender_domain="victim.example",
    )
    customer = factories.CustomerFactory(reseller=victim)
    api = key_client(api_key_create(reseller=victim, name="r")[1])
    invoice = make_issued_invoice(customer)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"{R}/invoices/{invoice.pk}/credit-notes/", {"amount": "10.00"}, format="json"
        )
    assert response.status_code == 201, response.content
    [message] = mail.outbox
    assert parseaddr(message.from_email) == ("Victim Proxies", "billing@victim.example")
    assert message.extra_headers["Message-ID"].endswith("@flowbill.example>")


# --- 5. customer keys die with the reseller key that minted them -----------------------------


def test_a_reseller_key_that_revokes_itself_takes_its_customer_keys_with_it():
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    reseller_raw = api_key_create(reseller=reseller, name="leaked")[1]
    api = key_client(reseller_raw)
    staff_key_raw = api_key_create(
        reseller=reseller,
        customer=customer,
        name="by staff",
        created_by_user=factories.StaffUserFactory(reseller=reseller, username="alice"),
    )[1]

    minted = api.post(f"{R}/customers/{customer.pk}/api-keys/", {"name": "shadow"}, format="json")
    assert minted.status_code == 201
    shadow_raw = minted.json()["key"]
    own_id = ApiKey.objects.get(name="leaked").pk
    assert minted.json()["created_by_key"] == own_id
    assert key_client(shadow_raw).get("/api/v1/me/").status_code == 200

    revoked = api.delete(f"{R}/api-keys/{own_id}/")

    assert revoked.status_code == 200
    assert (revoked.json()["id"], revoked.json()["customer_keys_revoked"]) == (own_id, 1)
    refused = key_client(shadow_raw).get("/api/v1/me/")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"
    # a key created by a staff login is not the revoked key's: it keeps working
    assert key_client(staff_key_raw).get("/api/v1/me/").status_code == 200


def test_a_revoked_key_cannot_mint_a_key_that_outlives_it():
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    creator, _ = api_key_create(reseller=reseller, name="leaked")
    api_key_revoke(api_key=creator, now=NOW)
    from accounts.api_keys import ApiKeyRevokedError

    with pytest.raises(ApiKeyRevokedError):
        api_key_create(reseller=reseller, customer=customer, name="late", created_by_key=creator)
    assert not ApiKey.objects.filter(name="late").exists()


def test_every_key_says_who_created_it_in_the_admin_and_list_api_keys(client):
    from io import StringIO

    from django.core.management import call_command

    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    staff = factories.StaffUserFactory(reseller=reseller, username="alice")
    parent, parent_raw = api_key_create(reseller=reseller, name="ops")  # a command: none
    client.force_login(staff)
    client.post(
        reverse("admin:accounts_customer_action", args=[customer.pk, "create_api_key"]),
        {"name": "from the admin"},
    )
    minted = key_client(parent_raw).post(
        f"{R}/customers/{customer.pk}/api-keys/", {"name": "from a key"}, format="json"
    )
    assert minted.status_code == 201
    by_admin = ApiKey.objects.get(name="from the admin")
    assert (by_admin.created_by_user, by_admin.created_by_key) == (staff, None)

    listing = client.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    assert "login alice" in listing and f"key {parent.prefix}" in listing
    out = StringIO()
    call_command("list_api_keys", "--reseller", reseller.slug, stdout=out)
    lines = {line.split("\t")[3]: line for line in out.getvalue().splitlines()}
    assert " by not recorded\t" in lines["ops"]
    assert " by login alice\t" in lines["from the admin"]
    assert f" by key {parent.prefix}\t" in lines["from a key"]

    done = client.post(reverse("admin:accounts_apikey_action", args=[parent.pk, "revoke"]))
    assert done.status_code == 302
    shown = client.get(done.url).content.decode()
    assert f"API key {parent.prefix} revoked, and the 1 customer key(s) it had created" in shown
    assert ApiKey.objects.get(name="from a key").revoked_at is not None
    assert ApiKey.objects.get(name="from the admin").revoked_at is None
