"""`manage.py list_api_keys --reseller ID_OR_SLUG`: the reseller's keys, one a line.

Prints id, prefix, scope (and customer), name, created (when and by whom: `login alice`,
`key k7x2m9qa`, `not recorded`), last used and revoked; never a key (only its hash is
stored) and never the hash.
"""

from django.core.management.base import BaseCommand

from accounts.management.commands.revoke_api_key import reseller_by_id_or_slug
from accounts.models import ApiKey


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


class Command(BaseCommand):
    help = "List a reseller's API keys (prefixes only; keys are never stored)."

    def add_arguments(self, parser):
        parser.add_argument("--reseller", required=True, help="The reseller's id or slug.")

    def handle(self, *args, reseller: str, **options):
        found = reseller_by_id_or_slug(reseller)
        keys = (
            ApiKey.objects.for_reseller(found)
            .select_related("customer", "created_by_user", "created_by_key")
            .order_by("pk")
        )
        for key in keys:
            scope = f"customer {key.customer_id} ({key.customer})" if key.customer else "reseller"
            status = f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active"
            self.stdout.write(
                f"{key.pk}\t{key.prefix}\t{scope}\t{key.name}\tcreated {_when(key.created_at)}"
                f" by {key.created_by}\tlast used {_when(key.last_used_at)}\t{status}"
            )
        if not keys:
            self.stderr.write(f"{found.slug} has no API keys.")
