"""`manage.py rotate_encryption_keys`: re-encrypt all stored secrets under the first key.

Rotation: prepend a new key to FLOWBILL_ENCRYPTION_KEYS (keep the old ones after it),
deploy, run this command, then drop the old keys.
"""

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from accounts.services import encrypted_fields, secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored credential under the first FLOWBILL_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        total = sum(model.objects.count() for model, _ in encrypted_fields())
        with tqdm(total=total, unit="row", file=sys.stderr, disable=None) as bar:
            rotated = secrets_rotate(progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} stored secrets."))
