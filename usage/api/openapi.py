"""OpenAPI texts of usage's operations and fields: a summary, a description and examples for
every operation, a description for every field. Applied once, when the URLs are loaded
(`usage.api.urls`), through core.openapi."""

from __future__ import annotations

from core.openapi import COMMON_FIELDS, apply_texts
from core.openapi import example as _ex
from usage.api import serializers as ser
from usage.api import views

_SERIES = {
    "timezone": "Asia/Shanghai",
    "unit_bytes": 1073741824,
    "granularity": "day",
    "total_bytes": 4258097384,
    "total_gb": "3.966",
    "results": [
        {"period": "2026-09-30", "bytes": 1073741824, "gb": "1.000"},
        {"period": "2026-10-01", "bytes": 3184355560, "gb": "2.966"},
        {"period": "2026-10-02", "bytes": 0, "gb": "0.000"},
    ],
}
_SERIES_MONTHS = {
    "timezone": "Asia/Shanghai",
    "unit_bytes": 1000000000,
    "granularity": "month",
    "total_bytes": 2254857830400,
    "total_gb": "2254.858",
    "results": [
        {"period": "2026-09-01", "bytes": 966367641600, "gb": "966.368"},
        {"period": "2026-10-01", "bytes": 1288490188800, "gb": "1288.490"},
    ],
}
_SYNC_REQUEST = {
    "upstream_accounts": [1],
    "window_start": "2026-10-29T04:00:00Z",
    "window_end": "2026-11-01T05:00:00Z",
    "queued": 2,
    "tasks": [
        {
            "task_id": "0b6f3c1e-5d2a-4f7b-9c41-2e8a7d6b5f10",
            "sync_run": 57,
            "kind": "usage",
            "upstream_account": 1,
            "sub_account": 1,
        },
        {
            "task_id": "41d2a9e7-8c3b-4e5f-a6d1-7f0b2c9e8a34",
            "sync_run": 58,
            "kind": "usage",
            "upstream_account": 1,
            "sub_account": 2,
        },
    ],
    "sync_runs": [57, 58],
}
_RUN_QUEUED = {
    "id": 59,
    "kind": "snapshot",
    "status": "queued",
    "upstream_account": 2,
    "sub_account": 3,
    "window_start": None,
    "window_end": None,
    "queued_at": "2026-11-01T04:10:02Z",
    "started_at": None,
    "finished_at": None,
    "duration_ms": None,
    "pages": 0,
    "requests": 0,
    "rows_written": 0,
    "error_code": "",
    "error": "",
}
_RUN_FAILED = {
    "id": 58,
    "kind": "usage",
    "status": "failed",
    "upstream_account": 1,
    "sub_account": 2,
    "window_start": "2026-10-29T04:00:00Z",
    "window_end": "2026-11-01T05:00:00Z",
    "queued_at": "2026-11-01T04:10:02Z",
    "started_at": "2026-11-01T04:10:02Z",
    "finished_at": "2026-11-01T04:10:03Z",
    "duration_ms": 812,
    "pages": 1,
    "requests": 1,
    "rows_written": 0,
    "error_code": "upstream_auth_failed",
    "error": "authentication failed: check the upstream account's API id and token",
}
_RUN_SUCCEEDED = {
    **_RUN_FAILED,
    "id": 57,
    "status": "succeeded",
    "sub_account": 1,
    "duration_ms": 1304,
    "rows_written": 76,
    "error_code": "",
    "error": "",
}
_RULE_QUOTA = {
    "id": 4,
    "customer": 1,
    "kind": "quota_share",
    "quota_gb": "500.000000",
    "percent": 80,
    "remaining_gb": None,
    "unit_bytes": 1073741824,
    "sub_account": None,
    "notify_customer": True,
    "is_active": True,
    "created_at": "2026-11-01T09:12:44Z",
}
_RULE_REMAINING = {
    "id": 5,
    "customer": 1,
    "kind": "remaining_below",
    "quota_gb": None,
    "percent": None,
    "remaining_gb": "10.000000",
    "unit_bytes": 1073741824,
    "sub_account": 3,
    "notify_customer": False,
    "is_active": True,
    "created_at": "2026-11-01T09:15:02Z",
}

_ALLOCATION = {
    "id": 41,
    "sub_account": 3,
    "bytes": 10737418240,
    "flow_mb": 10240,
    "expires_in_days": 30,
    "reason": "manual",
    "status": "pending",
    "created_by": "key k7x2m9qa",
    "idempotency_key": "5f0c9a2e71b4d83c6e19a0f2",
    "attempts": 0,
    "error_code": "",
    "error": "",
    "created_at": "2026-11-03T09:30:12Z",
    "sent_at": None,
    "confirmed_at": None,
}
_ALLOCATION_CONFIRMED = {
    **_ALLOCATION,
    "status": "confirmed",
    "attempts": 1,
    "sent_at": "2026-11-03T09:30:12Z",
    "confirmed_at": "2026-11-03T09:30:13Z",
}
_ALLOCATION_FAILED = {
    **_ALLOCATION,
    "id": 40,
    "status": "failed",
    "attempts": 1,
    "error_code": "upstream_insufficient_balance",
    "error": "IPFoxy: insufficient balance (60300)",
    "sent_at": "2026-11-02T17:02:40Z",
    "created_at": "2026-11-02T17:02:40Z",
}
_TRAFFIC = {
    "allocated_bytes": 16106127360,
    "used_bytes": 5368709120,
    "remaining_bytes": 10737418240,
    "as_of": "2026-11-03T09:31:00Z",
}

_SERIES_TEXT = (
    "Traffic per period over `from..to` (both inclusive), zero-filled: every period of the "
    "range appears, in order, with 0 where nothing was used. Traffic is integer bytes, as "
    "the upstreams reported it (`bytes`, `total_bytes`); `gb` is `bytes / unit_bytes` as a "
    "3-decimal string (1 GiB = 1,073,741,824 bytes unless `unit=gb`), a display figure: "
    "invoices convert with the plan's own unit. Day boundaries are those of the reseller's "
    "timezone (`timezone` in the answer): `day` is a calendar day there; `month` a calendar "
    "month dated by its 1st, summing only the range's days (a mid-month `from` gives a "
    "partial first month); `hour` the UTC hours that start inside the range's days, dated "
    "with the reseller's offset (a DST day has 23 or 25). Not paginated: a range is at most "
    "400 days (`day`), 31 days (`hour`) or 120 calendar months (`month`). Refused with 400 "
    "`validation_error`, `extra.fields` naming each parameter: an unknown or repeated "
    "parameter, a malformed date, `to` before `from`, a range over the limit."
)

# A list's example is one item: drf-spectacular puts it in the envelope as `results: [item]`.
_OPERATIONS = [
    (
        views.ResellerUsageView,
        "get",
        "Usage series",
        _SERIES_TEXT + " Without `customer` or `sub_account` the series sums all your "
        "customers; with both, the sub-account must be that customer's (else 400 on "
        "`sub_account`). A `customer` or `sub_account` that is not yours is a 404 "
        "`not_found`, like a missing one.",
        [_ex("Days", _SERIES), _ex("Months in GB (unit=gb)", _SERIES_MONTHS)],
    ),
    (
        views.MyUsageView,
        "get",
        "My usage series",
        _SERIES_TEXT + " Only the calling customer's sub-accounts (`customer` is not a "
        "parameter here: 400); a `sub_account` that is not the customer's is a 404 "
        "`not_found`, like a missing one.",
        [_ex("Days", _SERIES), _ex("Months in GB (unit=gb)", _SERIES_MONTHS)],
    ),
    (
        views.ResellerSyncView,
        "post",
        "Sync usage now",
        "Queues a fresh usage sync and answers 202 at once; the work runs in background "
        'workers. `{"upstream_account": id}` syncs every active sub-account of that upstream '
        "account, `{}` every active sub-account of every active upstream account. IPFoxy "
        "sub-accounts re-read the current UTC hour and the 72 before it (`window_start` to "
        "`window_end`, exclusive), BytesFlows ones take a ledger snapshot. One "
        "sync run per task is created `queued` before the tasks are sent (`sync_runs`): "
        "follow them with `GET sync-runs/{id}/` as they go `running`, then `succeeded`, "
        "`failed` or `skipped`. Nothing active to sync: 202 with `queued: 0`. Safe to "
        "repeat: a re-sync replaces the stored hourly buckets rather than adding to them, "
        "and a ledger snapshot adds only the traffic used since the previous one, so "
        "traffic is never counted twice; with an `Idempotency-Key` a retried request "
        "replays the first 202 instead of queueing again. Each upstream request still "
        "draws on the upstream account's request budget (a task short of it retries with "
        "backoff). Refused with 400 `validation_error`: an `upstream_account` that is not "
        "yours or does not exist (`Invalid pk`), or an unknown key; with "
        "`upstream_account_inactive`: an inactive one (409). A task broker that cannot be reached "
        "is a 503 `service_unavailable`.",
        [
            _ex("One upstream account", {"upstream_account": 1}, request=True),
            _ex("Every active upstream account", {}, request=True),
            _ex("Queued", _SYNC_REQUEST, status="202"),
        ],
    ),
    (
        views.SyncRunListView,
        "get",
        "List sync runs",
        "Your sync runs, newest first: runs still `queued` on top, then by start time. One "
        "run per sync of one sub-account (`usage`: IPFoxy hourly history; `snapshot`: a "
        "BytesFlows ledger snapshot) or per sub-account discovery of an upstream account "
        "(`discovery`), whether the API, the hourly schedule or staff started it. Filters "
        "`status`, `kind`, `upstream_account`, `sub_account` and `since` (started at or "
        "after; queued runs by `queued_at`). An unknown or repeated parameter or a bad "
        "value is a 400 `validation_error` naming it; an `upstream_account` or "
        "`sub_account` that is not yours a 404 `not_found`.",
        [_ex("A queued run", _RUN_QUEUED), _ex("A failed run", _RUN_FAILED)],
    ),
    (
        views.SyncRunDetailView,
        "get",
        "Get a sync run",
        "One sync run: what it was asked (`kind`, window), what it did (`pages`, "
        "`requests`, `rows_written`, `duration_ms`) and, when it failed or was skipped, why "
        "(`error_code`, `error`). A run that ends `failed` also sends the `sync.failed` "
        "webhook. Another reseller's or a missing run is a 404 `not_found`.",
        [_ex("Failed", _RUN_FAILED), _ex("Succeeded", _RUN_SUCCEEDED)],
    ),
    (
        views.UsageAlertRuleListCreateView,
        "get",
        "List usage alert rules",
        "Your customers' usage alert rules, ordered by id; filters `customer`, `kind` and "
        "`is_active`. An unknown or repeated parameter or a bad value is a 400 "
        "`validation_error` naming it; a `customer` that is not yours a 404 `not_found`.",
        [_ex("A quota rule", _RULE_QUOTA), _ex("A remaining-traffic rule", _RULE_REMAINING)],
    ),
    (
        views.UsageAlertRuleListCreateView,
        "post",
        "Create a usage alert rule",
        "Creates a traffic threshold for one of your customers (201). `quota_share` "
        "(default) fires when the customer's traffic in the current month (the reseller's "
        "calendar month, all its sub-accounts or `sub_account`) reaches `percent`% of "
        "`quota_gb`; `remaining_below` fires when the BytesFlows traffic left (latest ledger "
        "snapshot) drops under `remaining_gb`. GB are the rule's `unit_bytes` (1 GiB by "
        "default). Rules are checked after every sync that changed the customer's usage; a "
        "rule fires at most once per month, emails the customer unless `notify_customer` "
        "is false, and sends the `usage.alert` webhook. Refused with 400 "
        "`validation_error`, `extra.fields` naming each field: a field the kind needs is "
        "missing, a field of the other kind is given (leave it out or null), `percent` "
        "outside 1..1000, a `sub_account` of another customer or, for `remaining_below`, "
        "not a BytesFlows one, a `customer` or `sub_account` that is not yours (`Invalid "
        "pk`), or an unknown key.",
        [
            _ex(
                "Quota share",
                {"customer": 1, "kind": "quota_share", "quota_gb": "500", "percent": 80},
                request=True,
            ),
            _ex(
                "Remaining below",
                {
                    "customer": 1,
                    "kind": "remaining_below",
                    "remaining_gb": "10",
                    "sub_account": 3,
                    "notify_customer": False,
                },
                request=True,
            ),
            _ex("Created", _RULE_QUOTA, status="201"),
        ],
    ),
    (
        views.UsageAlertRuleDetailView,
        "get",
        "Get a usage alert rule",
        "One of your usage alert rules. Another reseller's or a missing rule is a 404 `not_found`.",
        [_ex("Rule", _RULE_QUOTA)],
    ),
    (
        views.UsageAlertRuleDetailView,
        "patch",
        "Change a usage alert rule",
        'Changes any field but `customer` (sending it is a 400 `validation_error`: "This '
        'field cannot be changed."). The rule is validated as a whole, with the same 400s '
        "as on create: switching `kind` needs the new kind's fields and the old ones set to "
        "null in the same request. A rule that already fired this month does not fire again "
        "this month after the change (one alert per rule and month). Another reseller's or "
        "a missing rule is a 404 `not_found`.",
        [
            _ex("Alert at 100 %", {"percent": 100}, request=True),
            _ex("Changed", {**_RULE_QUOTA, "percent": 100}),
        ],
    ),
    (
        views.SubAccountAllocationListCreateView,
        "get",
        "List a sub-account's allocations",
        "The allocation ledger of one of your sub-accounts, newest first: every allocation "
        "of traffic asked for it (by you, by staff or by Flowbill's automatic top-up), "
        "with its status. Filters `status` and `reason`. `confirmed` rows are what the "
        "upstream holds; `failed` ones were refused and applied nothing; `pending` ones "
        "are being sent (or resent); `needs_review` ones could not be settled (staff check "
        "the upstream). A sub-account that is not yours is a 404 `not_found`; an unknown "
        "or repeated parameter or a bad value a 400 `validation_error` naming it.",
        [_ex("Confirmed", _ALLOCATION_CONFIRMED), _ex("Failed", _ALLOCATION_FAILED)],
    ),
    (
        views.SubAccountAllocationListCreateView,
        "post",
        "Allocate traffic to a sub-account",
        "Adds prepaid traffic to an IPFoxy sub-account upstream, exactly once, and answers "
        "201 with the allocation. It is recorded `pending` with its own idempotency key "
        "before anything is sent; a worker then sends it (IPFoxy `allocate-flow-sub-"
        "account`) and records `confirmed`, or `failed` with `error_code` when the upstream "
        "refused it (e.g. `upstream_insufficient_balance`: the reseller's IPFoxy pool is "
        "empty). Follow it with `GET` on the list. When the outcome of a send is unknown (a "
        "timeout after sending, a worker that died), it stays `pending` and is resent with "
        "the SAME key, so the upstream applies it once whatever happens; one that cannot be "
        "settled within a day or 8 sends becomes `needs_review`. Where tasks run in-process "
        "(no task broker configured, as in the demo) the send happens before the answer, "
        "which may then already say `confirmed` or `failed`. `bytes` must be a positive "
        "whole number of the upstream account's MB (1 MB = 1,048,576 bytes unless the "
        "upstream account says otherwise), else 400 `invalid_amount`; `expires_in_days` "
        "(0 = never, 30, 90, 180, 360) is how long the upstream keeps the traffic. Refused "
        "with 409: " + views._STATE_409 + ", `sub_account_not_active` (suspended or "
        "closed), `customer_suspended`. A sub-account that is not yours is a 404. Each "
        "POST is a new allocation: send an `Idempotency-Key` header to retry one safely.",
        [
            _ex("10 GiB for 30 days", {"bytes": 10737418240, "expires_in_days": 30}, request=True),
            _ex("An order", {"bytes": 1073741824, "reason": "order"}, request=True),
            _ex("Recorded, being sent", _ALLOCATION, status="201"),
        ],
    ),
    (
        views.SubAccountTrafficView,
        "get",
        "Get a sub-account's traffic",
        "The traffic the upstream counts for one of your IPFoxy sub-accounts, read from it "
        "now (one request, ahead of background syncs): `used_bytes`, `remaining_bytes` and "
        "`allocated_bytes` = used + remaining (traffic that expired unused is not counted). "
        "IPFoxy caches these figures for a minute, so an allocation confirmed seconds ago "
        "may not show yet. Refused with 409: " + views._STATE_409 + " (BytesFlows "
        "remaining traffic is in its hourly ledger snapshots instead). An upstream that "
        "fails is a 502 with its error code, a 503 when it could not be reached "
        "(`extra.retryable`). A sub-account that is not "
        "yours is a 404 `not_found`.",
        [_ex("Traffic", _TRAFFIC)],
    ),
    (
        views.UsageAlertRuleDetailView,
        "delete",
        "Delete a usage alert rule",
        "Deletes the rule and the alerts it fired (204). To pause a rule instead, PATCH "
        "`is_active` to false. Another reseller's or a missing rule is a 404 `not_found`.",
        [],
    ),
]

_SERIES_FIELDS = {
    **COMMON_FIELDS,
    "granularity": "The periods of `results`: `day`, `month` or `hour`, as asked.",
    "upstream_account": "The upstream account's id.",
    "sub_account": "The sub-account this task syncs.",
}

_SYNC_RUN_FIELDS = {
    **COMMON_FIELDS,
    "id": "The sync run's id.",
    "kind": "`usage`: IPFoxy hourly history over the window; `snapshot`: a BytesFlows "
    "ledger snapshot; `discovery`: listing the upstream account's sub-accounts.",
    "status": "`queued` (its task has not started), `running`, `succeeded`, `failed` (see "
    "`error_code`) or `skipped` (another sync of the sub-account was running).",
    "upstream_account": "The upstream account's id.",
    "sub_account": "The sub-account synced; null for a `discovery` run.",
    "window_start": "`usage` runs: start of the UTC hours re-read; null for the other kinds.",
    "window_end": "`usage` runs: end of the UTC hours re-read (exclusive); `snapshot` runs: "
    "when the snapshot was taken (null while queued); null for `discovery`.",
    "queued_at": "When the API queued it (UTC); null for runs the schedule or staff started.",
    "started_at": "When its task started it (UTC); null while `queued`.",
    "finished_at": "When it ended (UTC); null while queued or running.",
    "duration_ms": "How long it ran, in milliseconds; null until it ends.",
    "pages": "Pages of upstream data read.",
    "requests": "HTTP requests made to the upstream.",
    "rows_written": "Stored rows written or changed (hour and day buckets; sub-accounts for "
    "a discovery); 0 when nothing changed.",
    "error_code": "Stable code of the failure (`upstream_auth_failed`, "
    "`upstream_unavailable`, `upstream_rate_limited`, `worker_lost`, ...) or of a skip "
    "(`sync_already_running`); empty when it succeeded.",
    "error": "What went wrong, for people (never credentials); empty when it succeeded.",
}

_RULE_FIELDS = {
    **COMMON_FIELDS,
    "id": "The rule's id.",
    "customer": "The customer the rule watches: one of yours; fixed once created.",
    "kind": "`quota_share` (default): the month's traffic reaches `percent`% of `quota_gb`; "
    "`remaining_below`: BytesFlows traffic left drops under `remaining_gb`.",
    "unit_bytes": "Bytes in one GB of `quota_gb` and `remaining_gb`: 1073741824 (default, "
    "1 GiB) or 1000000000.",
    "sub_account": "Only this sub-account of the customer (a BytesFlows one for "
    "`remaining_below`); null: all of them.",
    "is_active": "False: the rule is kept but not checked.",
}

_ALLOCATION_FIELDS = {
    **COMMON_FIELDS,
    "id": "The allocation's id.",
    "sub_account": "The sub-account the traffic goes to.",
    "bytes": "Traffic allocated, in bytes (a whole number of the upstream's MB).",
    "flow_mb": "The same in the upstream's MB: what is sent upstream.",
    "expires_in_days": "Days the upstream keeps this traffic: 0 (never), 30, 90, 180, 360.",
    "reason": "`manual` (you or staff), `order` (a customer's purchase) or `auto_topup` "
    "(Flowbill's automatic top-up).",
    "status": "`pending` (recorded, being sent or resent), `confirmed` (the upstream holds "
    "it), `failed` (refused: nothing applied, see `error_code`) or `needs_review` (its "
    "outcome could not be settled; staff check the upstream).",
    "created_by": "Who asked: `key <prefix>` (an API key), `login <username>` (staff) or `system`.",
    "idempotency_key": "Sent upstream with every send of this allocation, so it is "
    "applied at most once (quote it to support).",
    "attempts": "Sends so far (more than 1: resent with the same key).",
    "error_code": "Why the last send failed (`upstream_insufficient_balance`, "
    "`upstream_outcome_unknown`, ...); empty when none did.",
    "error": "The same for people; empty when no send failed.",
    "sent_at": "When it was last sent (UTC); null before the first send.",
    "confirmed_at": "When the upstream confirmed it (UTC); null until then.",
}

apply_texts(
    _OPERATIONS,
    [
        (
            [
                ser.UsagePointOutputSerializer,
                ser.UsageSeriesOutputSerializer,
                ser.SyncRequestInputSerializer,
                ser.QueuedSyncOutputSerializer,
                ser.SyncRequestOutputSerializer,
            ],
            _SERIES_FIELDS,
        ),
        ([ser.SyncRunOutputSerializer], _SYNC_RUN_FIELDS),
        (
            [
                ser.UsageAlertRuleCreateInputSerializer,
                ser.UsageAlertRuleUpdateInputSerializer,
                ser.UsageAlertRuleOutputSerializer,
            ],
            _RULE_FIELDS,
        ),
        (
            [
                ser.AllocationCreateInputSerializer,
                ser.AllocationOutputSerializer,
                ser.SubAccountTrafficOutputSerializer,
            ],
            _ALLOCATION_FIELDS,
        ),
    ],
)
