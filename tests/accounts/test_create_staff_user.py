"""`manage.py create_staff_user` (issue 16.8): a reseller's staff login that logs in to the
admin at once and lands on its dashboard; the one-time password printed once (or read from
stdin); unknown resellers, duplicates and bad input refused with clear errors."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import User
from tests.factories import ResellerFactory, StaffUserFactory


def run(*args, stdin: str | None = None) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    extra = {"stdin": StringIO(stdin)} if stdin is not None else {}
    call_command("create_staff_user", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def reseller(db):
    return ResellerFactory(name="Acme Proxies", slug="acme")


def test_creates_a_staff_login_and_prints_its_password_once(client, reseller):
    out, err = run("--reseller", "acme", "--username", "alice", "--email", "alice@acme.example")

    password = out.strip()
    assert out == f"{password}\n" and len(password) == 20
    assert password not in err
    assert "Created staff login alice" in err and "shown only this once" in err
    user = User.objects.get(username="alice")
    assert (user.reseller, user.email, user.is_staff, user.is_superuser, user.is_active) == (
        reseller, "alice@acme.example", True, False, True
    )  # fmt: skip
    assert password not in user.password and user.check_password(password)

    form = {"username": "alice", "password": password, "next": "/admin/"}
    assert client.post(reverse("admin:login"), form).status_code == 302
    home = client.get(reverse("admin:index"))
    assert home.status_code == 200
    assert home.context["dashboard"].reseller == reseller


def test_the_reseller_is_found_by_id_and_each_password_is_new(reseller):
    first, _ = run("--reseller", str(reseller.pk), "--username", "a1", "--email", "a1@x.example")
    second, _ = run("--reseller", str(reseller.pk), "--username", "a2", "--email", "a2@x.example")

    assert first != second
    assert set(User.objects.values_list("reseller_id", flat=True)) == {reseller.pk}


def test_password_from_stdin_is_used_and_not_printed(client, reseller):
    out, err = run(
        "--reseller", "acme", "--username", "bob", "--email", "bob@acme.example",
        "--password-stdin", stdin="Corr3ct-horse-battery\nignored\n",
    )  # fmt: skip

    assert out == ""
    assert "Corr3ct-horse-battery" not in err
    assert User.objects.get(username="bob").check_password("Corr3ct-horse-battery")
    form = {"username": "bob", "password": "Corr3ct-horse-battery", "next": "/admin/"}
    assert client.post(reverse("admin:login"), form).status_code == 302


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--reseller", "nope"], None, "No reseller with id or slug 'nope'."),
        (["--reseller", "999999"], None, "No reseller with id or slug '999999'."),
        (["--username", "TAKEN"], None, "username: A login named 'TAKEN' already exists."),
        (["--email", "not-an-email"], None, "email: Enter a valid email address."),
        (["--email", " "], None, "email: A staff login needs an email address."),
        (["--username", "bad name!"], None, "username: Enter a valid username."),
        (["--password-stdin"], "", "--password-stdin: stdin held no password."),
        (["--password-stdin"], "short\n", "password: This password is too short."),
    ],
)
def test_refusals_are_clear_command_errors(reseller, args, stdin, message):
    StaffUserFactory(username="taken", reseller=reseller)
    base = {"--reseller": "acme", "--username": "carol", "--email": "carol@acme.example"}
    for flag, value in zip(args[::2], args[1::2], strict=False):
        base[flag] = value
    argv = [item for pair in base.items() for item in pair]
    if "--password-stdin" in args:
        argv.append("--password-stdin")

    with pytest.raises(CommandError) as info:
        run(*argv, stdin=stdin)

    assert str(info.value).startswith(message)
    assert User.objects.count() == 1  # only the existing "taken"
