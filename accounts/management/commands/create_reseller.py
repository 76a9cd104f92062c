"""`manage.py create_reseller --name NAME --currency USD --timezone Asia/Shanghai [--prefix P]`.

Bootstraps a fresh installation. Prints only the new reseller's id on stdout, so scripts can
capture it (`RESELLER=$(manage.py create_reseller ...)`); everything else goes to stderr.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from accounts.models import Reseller
from accounts.services import reseller_create
from accounts.validators import validate_currency, validate_timezone


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Create a reseller and print its id (the slug is derived from the name)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Legal name, shown on invoices.")
        parser.add_argument("--currency", required=True, help="ISO 4217 code, e.g. USD.")
        parser.add_argument("--timezone", required=True, help="IANA name, e.g. Asia/Shanghai.")
        parser.add_argument("--prefix", default="INV", help="Invoice number prefix (A-Z, 0-9).")

    def handle(self, *args, name: str, currency: str, timezone: str, prefix: str, **options):
        name, currency = name.strip(), currency.strip().upper()
        for value, validate in ((currency, validate_currency), (timezone, validate_timezone)):
            try:
                validate(value)
            except ValidationError as exc:
                raise CommandError(_messages(exc)) from exc
        slug = slugify(name)[:60].strip("-")
        if not slug:
            raise CommandError("--name needs letters or digits to derive a slug from.")
        existing = Reseller.objects.filter(slug=slug).values_list("pk", flat=True).first()
        if existing is not None:
            raise CommandError(f"A reseller with slug {slug!r} already exists (id {existing}).")
        try:
            reseller = reseller_create(
                name=name,
                slug=slug,
                currency=currency,
                timezone=timezone,
                invoice_prefix=prefix.strip().upper(),
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        self.stdout.write(str(reseller.pk))
