"""`manage.py revoke_api_key PREFIX_OR_ID`: revoke one API key at once (its next request is a
401), and the customer keys it created. Revoking a revoked key keeps the first revocation
time. Platform operators use it; a reseller's staff use the admin or
`DELETE /api/v1/reseller/api-keys/{id}/`.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.api_keys import api_key_revoke
from accounts.models import ApiKey, Reseller


def reseller_by_id_or_slug(value: str) -> Reseller:
    value = value.strip()
    lookup = {"pk": int(value)} if value.isdigit() else {"slug": value}
    found = Reseller.objects.filter(**lookup).first()
    if found is None:
        raise CommandError(f"No reseller with id or slug {value!r}.")
    return found


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (as listed by list_api_keys) or id."

    def add_arguments(self, parser):
        parser.add_argument("key", help="The key's 8-character prefix, or its id.")

    def handle(self, *args, key: str, **options):
        value = key.strip()
        keys = ApiKey.objects.select_related("reseller")
        # A prefix may be all digits too: it wins over an id of the same spelling.
        api_key = keys.filter(prefix=value.lower()).first()
        if api_key is None and value.isdigit():
            api_key = keys.filter(pk=int(value)).first()
        if api_key is None:
            raise CommandError(f"No API key with prefix or id {value!r}.")
        done = api_key_revoke(api_key=api_key, now=timezone.now())
        verb = "Revoked" if done.revoked_now else "Already revoked:"
        self.stdout.write(
            f"{verb} API key {api_key.prefix} ({api_key.name}) of {api_key.reseller.slug}; "
            f"{done.minted_keys_revoked} customer key(s) it created revoked with it."
        )
