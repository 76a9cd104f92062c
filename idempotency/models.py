"""Responses stored per `Idempotency-Key`, so a retried POST replays instead of re-running."""

from django.db import models


class IdempotencyRecord(models.Model):
    """One key of one caller (`scope`: the API key, or the staff user of a session).

    `status_code` is empty while the first request runs; once set, the same request with
    the same key replays `status_code`/`response_body`/`response_headers` for 24 hours.
    Unique per (scope, key): of two simultaneous requests with one key, one inserts the row
    and runs, the other finds it and does not.
    """

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=2000)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_once_per_scope")
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
