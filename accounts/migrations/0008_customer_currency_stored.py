"""Every customer stores its currency (review finding 6 of issue 18 item 5).

Before this, an empty `Customer.currency` meant "the reseller's", read at rating time: such
a customer followed any later change of the reseller's currency, which the "currency locked
once invoiced" rule never saw. The empty ones now get the reseller's currency as it is
today (what they were billed in until now), codes stored in lower case or with spaces are
written in upper case, and a check constraint keeps every row a three-letter code.
"""

import accounts.validators
from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Trim, Upper


def fill_blank_currencies(apps, schema_editor):
    """Empty currencies take their reseller's; others are trimmed and upper-cased."""
    Customer = apps.get_model("accounts", "Customer")
    Reseller = apps.get_model("accounts", "Reseller")
    resellers = Reseller.objects.filter(pk=OuterRef("reseller_id")).values("currency")[:1]
    Customer.objects.filter(currency__regex=r"^\s*$").update(currency=Subquery(resellers))
    Customer.objects.exclude(currency__regex=r"^[A-Z]{3}$").update(
        currency=Upper(Trim("currency"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_payment_terms_reminders"),
    ]

    operations = [
        migrations.RunPython(fill_blank_currencies, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="customer",
            name="currency",
            field=models.CharField(
                help_text="ISO 4217; stored on every customer (created without one: the "
                "reseller's at that time). A later change of the reseller's currency does not "
                "change it.",
                max_length=3,
                validators=[accounts.validators.validate_currency],
            ),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.CheckConstraint(
                condition=models.Q(("currency__regex", "^[A-Z]{3}$")),
                name="customer_currency_code",
            ),
        ),
    ]
