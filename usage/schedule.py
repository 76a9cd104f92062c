"""Celery beat entries of the usage app (plain data; merged in settings).

- the trailing 72 hours of every active IPFoxy sub-account, once an hour, spread over the
  hour by the fan-out task itself (countdowns);
- BytesFlows ledger snapshots hourly (on the hour, so intervals line up with buckets);
- the IPFoxy sub-account list hourly;
- every 5 minutes, runs of sync requests still `queued` (their task's message was lost)
  get their task again, or are closed as failed after 30 minutes
  (`usage.services.requests.sync_runs_queued_sweep`);
- every minute, pending upstream writes (allocations, provisionings, access changes) that
  are due get their send again, each as recorded (`usage.services.upstream_writes`);
- every 10 minutes, the traffic figures of every IPFoxy sub-account, one walk of the
  sub-account list per upstream account (`usage.services.traffic.sub_account_traffic_refresh`);
- every 3 minutes, usage alert emails claimed by a worker that died mid-send are sent again
  (`usage.alerts.usage_alert_emails_recover`, the outbox's stale-claim rule).
"""

from celery.schedules import crontab

BEAT_SCHEDULE: dict = {
    "usage-sync-all": {
        "task": "usage.tasks.usage_sync_all_task",
        "schedule": crontab(minute=5),
    },
    "usage-snapshot-bytesflows": {
        "task": "usage.tasks.usage_snapshot_bytesflows_all_task",
        "schedule": crontab(minute=0),
    },
    "usage-discover-sub-accounts": {
        "task": "usage.tasks.usage_discover_sub_accounts_all_task",
        "schedule": crontab(minute=30),
    },
    "usage-sync-runs-queued-sweep": {
        "task": "usage.tasks.sync_runs_queued_sweep_task",
        "schedule": crontab(minute="*/5"),
    },
    "usage-upstream-writes-resend-pending": {
        "task": "usage.tasks.upstream_writes_resend_pending_task",
        "schedule": crontab(),  # every minute
    },
    "usage-sub-account-traffic-refresh": {
        "task": "usage.tasks.sub_account_traffic_refresh_all_task",
        "schedule": crontab(minute="*/10"),
    },
    "usage-alert-emails-recover": {
        "task": "usage.tasks.usage_alert_emails_recover_task",
        "schedule": 180.0,
        "options": {"expires": 170},
    },
}
