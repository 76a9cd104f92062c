# The reseller-wide usage rollup (issue 18 item 3), filled from the stored days.

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Sum
from django.db.models.functions import Mod

SLOTS = 8  # usage.services.rollup.SLOTS when this migration was written


def backfill(apps, schema_editor):
    """One row per (reseller, day, slot): the sum of the UsageDay rows of that reseller's
    sub-accounts with id % SLOTS == slot (usage.services.rollup)."""
    UsageDay = apps.get_model("usage", "UsageDay")
    ResellerUsageDay = apps.get_model("usage", "ResellerUsageDay")
    db = schema_editor.connection.alias
    groups = (
        UsageDay.objects.using(db)
        .annotate(slot=Mod("sub_account_id", SLOTS))
        .values_list("sub_account__customer__reseller_id", "day", "slot")
        .annotate(total=Sum("bytes"))
        .order_by()
    )
    ResellerUsageDay.objects.using(db).bulk_create(
        (
            ResellerUsageDay(reseller_id=reseller_id, day=day, slot=slot, bytes=total)
            for reseller_id, day, slot, total in groups.iterator(chunk_size=5000)
        ),
        batch_size=5000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("usage", "0010_allocation_status_choices"),
    ]

    operations = [
        migrations.CreateModel(
            name="ResellerUsageDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "day",
                    models.DateField(help_text="Calendar day in the reseller's timezone"),
                ),
                ("slot", models.PositiveSmallIntegerField()),
                ("bytes", models.BigIntegerField(default=0)),
                (
                    "reseller",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.reseller",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("reseller", "day", "slot"), name="reseller_usage_day_unique_slot"
                    )
                ],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
