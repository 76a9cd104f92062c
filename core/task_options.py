"""The options every Celery task is declared with: its retry policy (`*_TASK_OPTIONS`) and
its time limits (`*_TIME_LIMITS`, one named constant per kind of work), and the broker's
visibility timeout sized on the longest of them (`broker_visibility_timeout`, read by the
settings). The Celery application itself is wiring (`config.celery`); queues, routes and the
transport options are settings (`CELERY_TASK_QUEUES`, `CELERY_TASK_ROUTES`,
`CELERY_BROKER_TRANSPORT_OPTIONS` in config/settings/base.py).
"""

from smtplib import SMTPException

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError

# A database that is briefly away (restart, failover, network): every task that touches it
# retries with backoff until it is back, instead of failing for good. Tasks are
# idempotent, so a retry after a partial attempt is safe.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": DATABASE_ERRORS,
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 12,
}


def time_limits(*, soft: int, hard: int) -> dict[str, int]:
    """Decorator options for a task's time limits, in seconds.

    At `soft` Celery raises `SoftTimeLimitExceeded` inside the task: its cleanup runs (a
    transaction rolls back, a sync lock is released and its run recorded failed, an email
    claim is marked failed), and the task ends failed (or retries where its options say so).
    At `hard` the worker kills the process running it and starts a fresh one; whatever it
    held is released by expiry (the sync lock's TTL, the webhook delivery's lease, the stale
    email claim's timeout), each longer than the hard limit. Enforced by the prefork pool
    (the production workers); the solo and threads pools and in-process runs ignore them.
    """
    if not 0 < soft < hard:
        raise ValueError(f"need 0 < soft < hard, got soft={soft} hard={hard}")
    _HARD_TIME_LIMITS.append(hard)
    return {"soft_time_limit": soft, "time_limit": hard}


#: Every hard limit declared through `time_limits` (the longest sizes the visibility timeout).
_HARD_TIME_LIMITS: list[int] = []


# Time limits per kind of task. Sized to the real work with a wide margin: a limit ends a
# task that is stuck, never one that is merely busy.

#: Fan-outs and sweeps (beat's hourly passes, "sync now", the webhook sweep): a few queries
#: and one broker message per item, seconds even for 10,000 sub-accounts.
FANOUT_TIME_LIMITS = time_limits(soft=120, hard=180)
#: One record's database work: finalizing one invoice (its number, lines and PDF, tens of
#: milliseconds), refreshing one customer's drafts, checking one customer's usage alerts.
RECORD_TIME_LIMITS = time_limits(soft=120, hard=180)
#: One conversation with an upstream API (a sub-account's 72-hour sync, a ledger snapshot,
#: a discovery listing every sub-account of a large upstream account): up to 4 attempts per
#: request with 30 s reads, backoff, Retry-After (at most 120 s) and budget waits (at most
#: 120 s), over several pages. The hard limit stays below the sync lock's TTL and the stale
#: discovery cutoff (15 min each), so neither is taken over while its owner still runs.
UPSTREAM_TIME_LIMITS = time_limits(soft=600, hard=720)
#: A whole reseller at once: the hourly invoice cycle, a month's generation. About 130
#: invoices/s with PDFs (bench/invoices.py, 2 CPUs): 10,000 customers take minutes. Below
#: the hour, so an hourly cycle never overlaps the next one for long; a cut cycle resumes
#: at the next (every step is idempotent).
RESELLER_BATCH_TIME_LIMITS = time_limits(soft=1500, hard=1800)
#: Housekeeping deletes (idempotency records older than a day): one bulk DELETE.
PURGE_TIME_LIMITS = time_limits(soft=600, hard=720)
#: One email: the message built (an invoice or credit-note PDF read) and handed to SMTP
#: (EMAIL_TIMEOUT, 30 s, bounds each SMTP step; a healthy send takes about a second).
EMAIL_SEND_TIME_LIMITS = time_limits(soft=120, hard=180)
#: One webhook attempt: the guarded client's total deadline (`webhooks.delivery`, about
#: 10 s) plus the claim and the record. The delivery's lease outlives the hard limit, so
#: even a send killed here is never taken by a second worker while it runs.
WEBHOOK_SEND_TIME_LIMITS = time_limits(soft=30, hard=45)

#: The broker's visibility timeout (Redis): a message a worker took and never acknowledged
#: (the worker was killed) is handed to another worker after this many seconds. Every message
#: must be acknowledged before it: a task is acknowledged when it ends (`acks_late`), and a
#: task scheduled for later (a retry's backoff, a sync fan-out wave) is held by a worker,
#: unacknowledged, from the moment it is queued. So the default is the longest hard limit
#: plus this margin, and every task's longest countdown plus its hard limit stays below it
#: (tests/reliability/test_task_design.py). `FLOWBILL_BROKER_VISIBILITY_TIMEOUT` overrides it.
VISIBILITY_TIMEOUT_MARGIN = 300
LONGEST_HARD_TIME_LIMIT = max(_HARD_TIME_LIMITS)
DEFAULT_VISIBILITY_TIMEOUT = LONGEST_HARD_TIME_LIMIT + VISIBILITY_TIMEOUT_MARGIN


def broker_visibility_timeout(value: str | None, *, longest_hard_limit: int) -> int:
    """The visibility timeout in seconds: `value` (the environment's text), or when unset
    `longest_hard_limit` plus the margin. Refuses (`ImproperlyConfigured`) anything that is
    not a whole number of seconds above `longest_hard_limit`: a task still running would then
    be handed to a second worker."""
    default = longest_hard_limit + VISIBILITY_TIMEOUT_MARGIN
    if value is None or not value.strip():
        return default
    try:
        seconds = int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"FLOWBILL_BROKER_VISIBILITY_TIMEOUT must be a whole number of seconds, not {value!r}"
        ) from None
    if seconds <= longest_hard_limit:
        raise ImproperlyConfigured(
            f"FLOWBILL_BROKER_VISIBILITY_TIMEOUT={seconds} must be above the longest task hard "
            f"time limit ({longest_hard_limit} s), or a task still running would be handed to "
            f"a second worker; unset, it is {default}"
        )
    return seconds


#: Whole-reseller tasks (`RESELLER_BATCH_TIME_LIMITS`) retried on database errors: their
#: backoff stops at 4 minutes instead of 10, so a retry waiting for its countdown and then
#: running to the hard limit is still acknowledged within the visibility timeout.
RESELLER_BATCH_TASK_OPTIONS = {
    **DATABASE_RETRY_TASK_OPTIONS,
    "retry_backoff_max": VISIBILITY_TIMEOUT_MARGIN - 60,
    **RESELLER_BATCH_TIME_LIMITS,
}

# Tasks that send an email: retried on SMTP and network errors (and a send cut by its soft
# time limit, which the service records as failed) with backoff and jitter, for up to about
# three hours. The send itself is claimed under a row lock by the service, so a retry (or a
# duplicate delivery) never sends twice.
EMAIL_SEND_TASK_OPTIONS = {
    **EMAIL_SEND_TIME_LIMITS,
    "acks_late": True,
    "autoretry_for": (SMTPException, OSError, SoftTimeLimitExceeded, *DATABASE_ERRORS),
    "retry_backoff": 30,
    "retry_backoff_max": 1800,
    "retry_jitter": True,
    "max_retries": 8,
}
