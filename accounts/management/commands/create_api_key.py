"""`manage.py create_api_key --reseller ID_OR_SLUG [--name NAME]`: a reseller-scope key.

Prints only the full key on stdout (it is shown this once and stored only as a hash), so
scripts can capture it: `KEY=$(manage.py create_api_key --reseller acme)`.
"""

from django.core.management.base import BaseCommand

from accounts.api_keys import api_key_create
from accounts.management.commands.revoke_api_key import reseller_by_id_or_slug


class Command(BaseCommand):
    help = "Create a reseller-scope API key and print it (shown once; only its hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("--reseller", required=True, help="The reseller's id or slug.")
        parser.add_argument("--name", default="bootstrap", help="A label for the key.")

    def handle(self, *args, reseller: str, name: str, **options):
        found = reseller_by_id_or_slug(reseller)
        api_key, raw_key = api_key_create(reseller=found, name=name)
        self.stderr.write(f"Created API key {api_key.prefix} (id {api_key.pk}) for {found.slug}.")
        self.stdout.write(raw_key)
