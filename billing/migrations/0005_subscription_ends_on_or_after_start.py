# A subscription may end on the day it starts: cancelled, never active, billed nothing.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_credit_notes"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="subscription",
            name="subscription_ends_after_start",
        ),
        migrations.AddConstraint(
            model_name="subscription",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("ends_on__isnull", True),
                    ("ends_on__gte", models.F("starts_on")),
                    _connector="OR",
                ),
                name="subscription_ends_on_or_after_start",
            ),
        ),
    ]
