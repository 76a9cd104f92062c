"""`manage.py create_staff_user --reseller ID_OR_SLUG --username U --email E [--password-stdin]`.

Creates a login for a reseller's staff (`accounts.services.staff_user_create`): staff, never
a superuser, able to log in to the admin at once, where it lands on its reseller's
dashboard. Without `--password-stdin` a one-time password is generated and printed once, as
the only line on stdout (`PW=$(manage.py create_staff_user ...)`); only its hash is stored.
With `--password-stdin` the first line of stdin is the password (checked by the password
validators) and stdout stays empty. Everything else goes to stderr. An unknown reseller, a
username taken (in any letter case) or an invalid email or password is a CommandError.
"""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.commands.create_reseller import _messages
from accounts.management.commands.revoke_api_key import reseller_by_id_or_slug
from accounts.services import staff_user_create


class Command(BaseCommand):
    help = (
        "Create a staff login for a reseller and print its one-time password (shown once), "
        "or read the password from stdin with --password-stdin."
    )
    stealth_options = ("stdin",)  # tests hand call_command a stdin

    def add_arguments(self, parser):
        parser.add_argument("--reseller", required=True, help="The reseller's id or slug.")
        parser.add_argument("--username", required=True, help="The login name.")
        parser.add_argument("--email", required=True, help="The staff member's email.")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of stdin instead of generating one.",
        )

    def handle(self, *args, reseller: str, username: str, email: str, **options):
        found = reseller_by_id_or_slug(reseller)
        password = None
        if options["password_stdin"]:
            stdin = options.get("stdin") or sys.stdin
            password = stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: stdin held no password.")
        try:
            created = staff_user_create(
                reseller=found, username=username, email=email, password=password
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        user = created.user
        self.stderr.write(
            f"Created staff login {user.username} (id {user.pk}) for reseller {found.slug}. "
            "It logs in at /admin/ and lands on the reseller's dashboard."
        )
        if created.password is not None:
            self.stderr.write(
                "Its one-time password follows; it is shown only this once. "
                "Change it after the first login."
            )
            self.stdout.write(created.password)
