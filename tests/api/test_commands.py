"""Bootstrap commands print only the new id or key on stdout."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.api_keys import api_key_authenticate
from accounts.models import ApiKey, Reseller
from tests import factories


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_create_reseller_prints_only_the_id():
    out, _ = run(
        "create_reseller",
        "--name",
        "Shanghai Proxy Co., Ltd.",
        "--currency",
        "cny",
        "--timezone",
        "Asia/Shanghai",
        "--prefix",
        "SPC",
    )
    reseller = Reseller.objects.get()
    assert out == f"{reseller.pk}\n"
    assert reseller.slug == "shanghai-proxy-co-ltd"
    assert (reseller.currency, reseller.timezone, reseller.invoice_prefix) == (
        "CNY",
        "Asia/Shanghai",
        "SPC",
    )


@pytest.mark.parametrize(
    ("currency", "timezone", "message"),
    [
        ("DOLLARS", "UTC", "DOLLARS is not an ISO 4217 currency code."),
        ("USD", "Mars/Olympus", "Mars/Olympus is not an IANA timezone name"),
    ],
)
@pytest.mark.django_db
def test_create_reseller_refuses_bad_currency_or_timezone(currency, timezone, message):
    with pytest.raises(CommandError, match=message):
        run("create_reseller", "--name", "Acme", "--currency", currency, "--timezone", timezone)
    assert not Reseller.objects.exists()


@pytest.mark.django_db
def test_create_reseller_refuses_a_taken_slug_and_a_bad_prefix():
    factories.ResellerFactory(slug="acme")
    with pytest.raises(CommandError, match="already exists"):
        run("create_reseller", "--name", "ACME", "--currency", "USD", "--timezone", "UTC")
    with pytest.raises(CommandError, match="invoice_prefix"):
        run(
            "create_reseller",
            *("--name", "Other", "--currency", "USD", "--timezone", "UTC", "--prefix", "in-v"),
        )


@pytest.mark.parametrize("by", ["id", "slug"])
@pytest.mark.django_db
def test_create_api_key_prints_only_a_working_reseller_key(reseller, by):
    out, _ = run("create_api_key", "--reseller", str(reseller.pk if by == "id" else reseller.slug))
    raw_key = out.removesuffix("\n")
    assert "\n" not in raw_key and raw_key.startswith("fb_")
    api_key = ApiKey.objects.get()
    assert api_key.scope == ApiKey.Scope.RESELLER and api_key.reseller == reseller
    assert api_key_authenticate(raw_key=raw_key, now=api_key.created_at) == api_key


@pytest.mark.django_db
def test_create_api_key_refuses_an_unknown_reseller(reseller):
    with pytest.raises(CommandError, match="No reseller"):
        run("create_api_key", "--reseller", "nope")
    assert not ApiKey.objects.exists()
