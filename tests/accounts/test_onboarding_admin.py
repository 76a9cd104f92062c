"""Onboarding through the admin (issue 16.8, issue 18.5): upstream accounts and sub-accounts
get write-only credential inputs checked by the same service rule as the API
(`accounts.services.credentials_check`), saved through the services; the superuser creates a
reseller's staff login that can log in at once; a reseller's login never loses staff status
silently."""

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import admin as accounts_admin
from accounts.api_keys import api_key_create
from accounts.models import Provider, SubAccount, UpstreamAccount, User
from accounts.services import (
    CREDENTIAL_KEYS,
    SUB_ACCOUNT,
    UPSTREAM,
    InvalidCredentials,
    credential_keys,
    sub_account_create,
    upstream_account_create,
    upstream_account_update,
)
from tests.factories import (
    CustomerFactory,
    ResellerFactory,
    StaffUserFactory,
    SubAccountFactory,
    UpstreamAccountFactory,
)

API_ID, API_TOKEN, BF_TOKEN = "ipf-id-4711", "ipf-TOKEN-very-secret-42", "bf-TOKEN-secret-99"
ADD_UPSTREAM = "admin:accounts_upstreamaccount_add"
ADD_SUB = "admin:accounts_subaccount_add"


def upstream_form(**overrides) -> dict:
    return {
        "provider": "ipfoxy", "name": "IPFoxy main", "base_url": "", "cost_per_gb": "0.85",
        "mb_bytes": "1048576", "requests_per_minute": "50", "is_active": "on",
        "api_id": "", "api_token": "", **overrides,
    }  # fmt: skip


def errors_of(response) -> dict[str, list[str]]:
    """The form's errors by field (`__all__` for the form's own)."""
    assert response.status_code == 200, response.status_code
    return {
        name: list(errors) for name, errors in response.context["adminform"].form.errors.items()
    }


@pytest.fixture
def reseller(db):
    return ResellerFactory(name="Acme Proxies")


@pytest.fixture
def staff(reseller):
    return StaffUserFactory(reseller=reseller, username="acme-staff")


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "pw-Root-12345")


@pytest.fixture(params=["superuser", "staff"])
def operator(request, client, reseller, superuser, staff):
    """The admin client, logged in as the superuser or as the reseller's staff; the extra
    form data a new upstream account needs (the superuser picks the reseller)."""
    user = superuser if request.param == "superuser" else staff
    client.force_login(user)
    extra = {"reseller": reseller.pk} if request.param == "superuser" else {}
    return client, extra


# --- upstream accounts ----------------------------------------------------------------------


def test_the_add_page_has_write_only_credential_inputs(operator):
    client, _ = operator
    html = client.get(reverse(ADD_UPSTREAM)).content.decode()
    for name in ("api_id", "api_token"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
        assert tag, name
        assert 'type="password"' in tag.group(0)
        assert "value=" not in tag.group(0)
    assert "IPFoxy API token" in html and "Required for IPFoxy" in html


def test_an_ipfoxy_account_is_added_with_its_credentials(operator, reseller):
    client, extra = operator
    response = client.post(
        reverse(ADD_UPSTREAM), upstream_form(api_id=API_ID, api_token=API_TOKEN, **extra)
    )

    assert response.status_code == 302
    account = UpstreamAccount.objects.get()
    assert account.reseller == reseller
    assert account.provider == Provider.IPFOXY
    assert account.credentials == {"api_id": API_ID, "api_token": API_TOKEN}
    change = client.get(reverse("admin:accounts_upstreamaccount_change", args=[account.pk]))
    html = change.content.decode()
    assert API_ID not in html and API_TOKEN not in html
    assert html.count("Stored; leave empty to keep it.") == 2


def test_an_ipfoxy_account_without_both_credentials_is_refused_without_echoing_them(operator):
    client, extra = operator

    nothing = client.post(reverse(ADD_UPSTREAM), upstream_form(**extra))
    half = client.post(reverse(ADD_UPSTREAM), upstream_form(api_token=API_TOKEN, **extra))

    assert errors_of(nothing) == {
        "api_id": ["This field is required."],
        "api_token": ["This field is required."],
    }
    assert errors_of(half) == {"api_id": ["This field is required."]}
    assert API_TOKEN not in half.content.decode()  # a re-shown form never carries a secret
    assert "IPFoxy needs both" not in nothing.content.decode()
    assert not UpstreamAccount.objects.exists()


def test_a_bytesflows_account_needs_no_credentials_and_takes_none(operator):
    client, extra = operator
    form = upstream_form(provider="bytesflows", name="BF", **extra)

    refused = client.post(reverse(ADD_UPSTREAM), {**form, "api_token": API_TOKEN})
    added = client.post(reverse(ADD_UPSTREAM), form)

    assert errors_of(refused) == {"api_token": ["Not a bytesflows credential."]}
    assert API_TOKEN not in refused.content.decode()
    assert added.status_code == 302
    assert UpstreamAccount.objects.get().credentials == {}


def test_a_change_keeps_each_secret_left_empty_and_checks_the_result(client, staff, reseller):
    stored = UpstreamAccountFactory(reseller=reseller, name="Up", credentials={})
    client.force_login(staff)
    url = reverse("admin:accounts_upstreamaccount_change", args=[stored.pk])
    form = upstream_form(name="Up", base_url="http://127.0.0.1:8765", cost_per_gb="1.5")

    assert "Not set." in client.get(url).content.decode()
    half = client.post(url, {**form, "api_token": API_TOKEN})  # nothing stored to keep
    assert errors_of(half) == {"api_id": ["This field is required."]}
    assert client.post(url, {**form, "api_id": API_ID, "api_token": API_TOKEN}).status_code == 302
    assert client.post(url, {**form, "api_token": "rotated-token"}).status_code == 302
    assert client.post(url, {**form, "cost_per_gb": "2"}).status_code == 302

    stored.refresh_from_db()
    assert stored.credentials == {"api_id": API_ID, "api_token": "rotated-token"}
    assert str(stored.cost_per_gb) == "2.000000"


def test_moving_the_base_url_needs_both_credentials_typed_in_even_when_stored(client, staff):
    account = UpstreamAccountFactory(reseller=staff.reseller, name="Up")
    client.force_login(staff)
    url = reverse("admin:accounts_upstreamaccount_change", args=[account.pk])
    form = upstream_form(name="Up", base_url="http://localhost:9000", cost_per_gb="1.5")

    only_token = client.post(url, {**form, "api_token": API_TOKEN})
    moved = client.post(url, {**form, "api_id": API_ID, "api_token": API_TOKEN})

    assert errors_of(only_token) == {
        "base_url": ["Changing base_url requires entering the api_id and api_token again."]
    }
    assert moved.status_code == 302
    account.refresh_from_db()
    assert account.base_url == "http://localhost:9000"
    assert account.credentials == {"api_id": API_ID, "api_token": API_TOKEN}


def test_the_provider_is_fixed_once_created(client, staff):
    account = UpstreamAccountFactory(reseller=staff.reseller, name="Up")
    client.force_login(staff)
    url = reverse("admin:accounts_upstreamaccount_change", args=[account.pk])

    response = client.post(
        url, upstream_form(provider="bytesflows", name="Up", base_url="http://127.0.0.1:8765")
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.provider == Provider.IPFOXY
    assert account.credentials == {"api_id": "id-1", "api_token": "tok-secret-1"}


def test_the_admin_saves_through_the_services(client, staff, monkeypatch):
    calls = []
    for name in ("upstream_account_create", "upstream_account_update"):
        real = getattr(accounts_admin, name)
        monkeypatch.setattr(
            accounts_admin,
            name,
            lambda *a, _real=real, _n=name, **kw: calls.append(_n) or _real(*a, **kw),
        )
    client.force_login(staff)
    assert (
        client.post(
            reverse(ADD_UPSTREAM), upstream_form(api_id=API_ID, api_token=API_TOKEN)
        ).status_code
        == 302
    )
    account = UpstreamAccount.objects.get()
    url = reverse("admin:accounts_upstreamaccount_change", args=[account.pk])
    assert client.post(url, upstream_form(name="Renamed")).status_code == 302

    assert calls == ["upstream_account_create", "upstream_account_update"]
    account.refresh_from_db()
    assert (account.name, account.credentials["api_token"]) == ("Renamed", API_TOKEN)


def test_the_list_says_whether_credentials_are_set(client, staff):
    UpstreamAccountFactory(reseller=staff.reseller, name="With")
    UpstreamAccountFactory(reseller=staff.reseller, name="Without", credentials={})
    UpstreamAccountFactory(
        reseller=staff.reseller, name="BF", provider=Provider.BYTESFLOWS, credentials={}
    )
    client.force_login(staff)
    html = client.get(reverse("admin:accounts_upstreamaccount_changelist")).content.decode()
    cells = re.findall(r'<td class="field-credentials_status">([^<]*)</td>', html)
    assert sorted(cells) == ["missing", "not needed", "set"]
    assert "tok-secret-1" not in html


# --- sub-accounts ---------------------------------------------------------------------------


@pytest.fixture
def bytesflows(reseller):
    return UpstreamAccountFactory(
        reseller=reseller, name="BF", provider=Provider.BYTESFLOWS, credentials={}
    )


def sub_form(customer, upstream, **overrides) -> dict:
    return {
        "customer": customer.pk, "upstream_account": upstream.pk, "upstream_id": "bf-user-1",
        "label": "", "status": "active", "active_from": "", "active_to": "", "token": "",
        **overrides,
    }  # fmt: skip


def test_a_bytesflows_sub_account_takes_its_token_write_only(client, staff, bytesflows):
    customer = CustomerFactory(reseller=staff.reseller)
    client.force_login(staff)

    html = client.get(reverse(ADD_SUB)).content.decode()
    missing = client.post(reverse(ADD_SUB), sub_form(customer, bytesflows))
    added = client.post(reverse(ADD_SUB), sub_form(customer, bytesflows, token=BF_TOKEN))

    assert re.search(r'<input[^>]*type="password"[^>]*name="token"', html)
    assert errors_of(missing) == {"token": ["This field is required."]}
    assert added.status_code == 302
    sub = SubAccount.objects.get()
    assert sub.credentials == {"token": BF_TOKEN}
    change = client.get(reverse("admin:accounts_subaccount_change", args=[sub.pk]))
    assert BF_TOKEN not in change.content.decode()
    assert "Stored; leave empty to keep it." in change.content.decode()


def test_an_ipfoxy_sub_account_takes_no_token(client, staff, upstream_lists_every_id):
    customer = CustomerFactory(reseller=staff.reseller)
    ipfoxy = UpstreamAccountFactory(reseller=staff.reseller)
    client.force_login(staff)

    refused = client.post(reverse(ADD_SUB), sub_form(customer, ipfoxy, token=BF_TOKEN))
    added = client.post(reverse(ADD_SUB), sub_form(customer, ipfoxy, upstream_id="SUB1"))

    assert errors_of(refused) == {"token": ["Not a ipfoxy credential."]}
    assert added.status_code == 302
    assert SubAccount.objects.get().credentials == {}


def test_a_sub_account_change_keeps_or_replaces_the_token_and_keeps_its_identity(
    client, staff, bytesflows
):
    sub = SubAccountFactory(
        customer=CustomerFactory(reseller=staff.reseller),
        upstream_account=bytesflows,
        upstream_id="bf-user-1",
        credentials={"token": BF_TOKEN},
    )
    other = CustomerFactory(reseller=staff.reseller)
    client.force_login(staff)
    url = reverse("admin:accounts_subaccount_change", args=[sub.pk])
    form = sub_form(other, bytesflows, upstream_id="renamed", label="Main")

    assert client.post(url, form).status_code == 302
    sub.refresh_from_db()
    assert (sub.label, sub.credentials) == ("Main", {"token": BF_TOKEN})
    assert (sub.customer_id, sub.upstream_id) != (other.pk, "renamed")  # fixed, as in the API

    assert client.post(url, {**form, "token": "bf-rotated"}).status_code == 302
    sub.refresh_from_db()
    assert sub.credentials == {"token": "bf-rotated"}


# --- one rule for the API and the admin -----------------------------------------------------


def test_the_forms_offer_exactly_the_credential_keys_of_the_rule():
    assert credential_keys(kind=UPSTREAM) == ("api_id", "api_token")
    assert credential_keys(kind=SUB_ACCOUNT) == ("token",)
    assert {k for k, _ in CREDENTIAL_KEYS} == {UPSTREAM, SUB_ACCOUNT}
    for form, kind in (
        (accounts_admin.UpstreamAccountForm, UPSTREAM),
        (accounts_admin.SubAccountForm, SUB_ACCOUNT),
    ):
        assert set(credential_keys(kind=kind)) <= set(form.base_fields)


@pytest.mark.parametrize(
    ("provider", "entered"),
    [
        ("ipfoxy", {}),
        ("ipfoxy", {"api_id": API_ID}),
        ("ipfoxy", {"api_id": API_ID, "api_token": API_TOKEN}),
        ("bytesflows", {"api_token": API_TOKEN}),
        ("bytesflows", {}),
    ],
)
def test_the_api_and_the_admin_give_the_same_answer(client, staff, provider, entered):
    api = APIClient()
    api.credentials(
        HTTP_AUTHORIZATION=f"Api-Key {api_key_create(reseller=staff.reseller, name='k')[1]}"
    )
    client.force_login(staff)

    by_api = api.post(
        "/api/v1/reseller/upstream-accounts/",
        {"name": "via-api", "provider": provider, "credentials": entered},
        format="json",
    )
    by_admin = client.post(
        reverse(ADD_UPSTREAM), upstream_form(provider=provider, name="via-admin", **entered)
    )

    if by_api.status_code == 201:
        assert by_admin.status_code == 302
        assert set(UpstreamAccount.objects.values_list("name", flat=True)) == {
            "via-api", "via-admin"
        }  # fmt: skip
    else:
        assert by_api.json()["extra"]["fields"]["credentials"] == errors_of(by_admin)


def test_the_services_enforce_the_rule_for_every_caller(reseller, bytesflows):
    with pytest.raises(InvalidCredentials) as info:
        upstream_account_create(reseller=reseller, provider=Provider.IPFOXY, name="x")
    assert info.value.problems == {
        "api_id": ["This field is required."],
        "api_token": ["This field is required."],
    }
    assert info.value.message_dict == {
        "credentials": ["api_id: This field is required.", "api_token: This field is required."]
    }
    account = upstream_account_create(
        reseller=reseller,
        provider=Provider.IPFOXY,
        name="x",
        credentials={"api_id": API_ID, "api_token": API_TOKEN},
    )
    with pytest.raises(InvalidCredentials):
        upstream_account_update(upstream_account=account, credentials={"api_id": "only"})
    with pytest.raises(InvalidCredentials):
        sub_account_create(
            customer=CustomerFactory(reseller=reseller), upstream_account=bytesflows,
            upstream_id="bf-1",
        )  # fmt: skip
    account.refresh_from_db()
    assert account.credentials == {"api_id": API_ID, "api_token": API_TOKEN}
    assert not SubAccount.objects.exists()


# --- staff logins from the superuser's admin ------------------------------------------------


def _create_staff(client, reseller, **form):
    url = reverse("admin:accounts_reseller_action", args=[reseller.pk, "create_staff_user"])
    return client.post(url, {"username": "new-staff", "email": "new@acme.example", **form})


def _admin_login(client, username, password):
    form = {"username": username, "password": password, "next": "/admin/"}
    return client.post(reverse("admin:login"), form)


def test_the_superuser_creates_a_staff_login_that_works_at_once(client, superuser, reseller):
    client.force_login(superuser)
    page = client.get(reverse("admin:accounts_reseller_change", args=[reseller.pk]))
    assert [a.action.name for a in page.context["flowbill_actions"]] == [
        "create_staff_user",
        "export",
    ]

    response = _create_staff(client, reseller)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    password = response.context["password"]
    assert len(password) == 20 and password in response.content.decode()
    user = User.objects.get(username="new-staff")
    assert (user.reseller, user.email, user.is_staff, user.is_superuser) == (
        reseller, "new@acme.example", True, False
    )  # fmt: skip
    assert password not in str(client.session.items())

    client.logout()
    assert _admin_login(client, "new-staff", password).status_code == 302
    home = client.get(reverse("admin:index"))
    assert home.context["dashboard"].reseller == reseller


def test_a_duplicate_or_invalid_staff_login_is_refused_with_a_message(client, superuser, reseller):
    StaffUserFactory(username="taken", reseller=reseller)
    client.force_login(superuser)
    cases = [
        ({"username": "TAKEN"}, "Refused: A login named 'TAKEN' already exists."),
        ({"email": "not-an-email"}, "Refused: Enter a valid email address."),
        ({"username": ""}, "Refused: This field cannot be blank."),
    ]
    for form, expected in cases:
        response = _create_staff(client, reseller, **form)
        assert response.status_code == 302
        assert [str(m) for m in response.wsgi_request._messages][-1] == expected
    assert list(User.objects.filter(reseller=reseller).values_list("username", flat=True)) == [
        "taken"
    ]


def test_reseller_staff_cannot_create_logins(client, staff, reseller):
    client.force_login(staff)
    page = client.get(reverse("admin:accounts_reseller_change", args=[reseller.pk]))
    # staff download their exports but never create logins
    assert [a.action.name for a in page.context["flowbill_actions"]] == ["export"]
    assert _create_staff(client, reseller).status_code == 403
    assert not User.objects.filter(username="new-staff").exists()


def test_add_user_with_a_reseller_makes_a_staff_login(client, superuser, reseller):
    client.force_login(superuser)
    form = {
        "username": "via-user-admin", "email": "u@acme.example", "usable_password": "true",
        "password1": "Corr3ct-horse-battery", "password2": "Corr3ct-horse-battery",
        "reseller": reseller.pk,
    }  # fmt: skip
    without_password = client.post(
        reverse("admin:accounts_user_add"), {**form, "usable_password": "false"}
    )
    without_email = client.post(reverse("admin:accounts_user_add"), {**form, "email": ""})
    assert "needs a password" in without_password.content.decode()
    assert errors_of(without_email) == {"email": ["A staff login needs an email address."]}

    assert client.post(reverse("admin:accounts_user_add"), form).status_code == 302

    user = User.objects.get(username="via-user-admin")
    assert (user.reseller, user.is_staff, user.is_superuser) == (reseller, True, False)
    client.logout()
    assert _admin_login(client, "via-user-admin", "Corr3ct-horse-battery").status_code == 302
    assert client.get(reverse("admin:index")).context["dashboard"].reseller == reseller


def test_a_resellers_login_cannot_lose_staff_status_silently(client, superuser, staff):
    client.force_login(superuser)
    url = reverse("admin:accounts_user_change", args=[staff.pk])
    form = {
        "username": staff.username, "email": staff.email, "first_name": "", "last_name": "",
        "is_active": "on", "reseller": staff.reseller_id, "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00", "last_login_0": "", "last_login_1": "",
    }  # fmt: skip

    unticked = client.post(url, form)
    superuser_too = client.post(url, {**form, "is_staff": "on", "is_superuser": "on"})
    deactivated = client.post(url, {**form, "is_staff": "on", "is_active": ""})

    assert errors_of(unticked)["is_staff"] == [
        "A reseller's login is always staff (the admin would refuse it otherwise); to stop "
        "it, untick Active instead."
    ]
    assert errors_of(superuser_too)["is_superuser"] == ["A reseller's login cannot be a superuser."]
    assert deactivated.status_code == 302
    staff.refresh_from_db()
    assert (staff.is_staff, staff.is_superuser, staff.is_active) == (True, False, False)
