"""`manage.py webhooks_send_due`: send every webhook delivery that is due, in this process.

With a broker, the beat entry `webhooks-send-due` does this every minute through workers;
without one (tasks in-process, development), run this command (or loop it) instead.
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from webhooks.delivery import webhook_deliveries_due, webhook_delivery_send


class Command(BaseCommand):
    help = "Send the webhook deliveries that are due (first sends and retries)."

    def handle(self, *args, **options):
        sent = {"succeeded": 0, "pending": 0, "failed": 0}
        for delivery_id in webhook_deliveries_due(now=timezone.now()):
            delivery = webhook_delivery_send(delivery_id=delivery_id, now=timezone.now())
            if delivery is not None:
                sent[delivery.status] += 1
        self.stdout.write(
            f"{sent['succeeded']} delivered, {sent['pending']} to retry, {sent['failed']} failed."
        )
