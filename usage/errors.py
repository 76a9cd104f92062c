"""The usage app's error codes and their HTTP status (`core.errors.ERROR_CODES`): sync, the
upstreams (502 when one refused or answered nonsense, 503 when it could not be reached or
asked now: try again), allocations, suspension, provisioning."""

from core.errors import error_codes_register

error_codes_register(
    {
        "empty_sync_window": (400, "The sync window holds no time."),
        "provider_has_no_history": (400, "The provider cannot backfill past usage."),
        "snapshot_out_of_order": (400, "An upstream counter reading is older than the last one."),
        "upstream_account_inactive": (409, "The upstream account is switched off."),
        "request_budget_exhausted": (503, "The upstream's request budget is used up; retry later."),
        "upstream_auth_failed": (502, "The upstream refused the stored credentials."),
        "upstream_bad_parameter": (502, "The upstream refused a parameter."),
        "upstream_bad_response": (502, "The upstream answered something unreadable."),
        "upstream_error": (502, "The upstream reported an error."),
        "upstream_insufficient_balance": (409, "The upstream account has no balance left."),
        "upstream_rate_limited": (503, "The upstream rate-limited the request."),
        "upstream_unavailable": (503, "The upstream could not be reached."),
        "upstream_unknown_code": (502, "The upstream answered with an unknown error code."),
        "worker_lost": (502, "The worker running a sync run died; the run was closed."),
        "provider_has_no_reseller_api": (
            409,
            "The sub-account's provider publishes no reseller API (BytesFlows: monitor-only): no "
            "allocations, no traffic read.",
        ),
        "upstream_id_invalid": (
            409,
            "The sub-account's upstream id is not an account name the upstream accepts.",
        ),
        "sub_account_not_active": (409, "The sub-account is suspended or closed."),
        "customer_suspended": (409, "The customer is suspended: no traffic is allocated."),
        "customer_already_suspended": (
            409,
            "The customer is suspended already; reinstate it first.",
        ),
        "customer_not_suspended": (
            409,
            "The customer is not suspended; there is nothing to reinstate.",
        ),
        "customer_suspended_by_staff": (
            409,
            "Staff suspended the customer: only staff reinstate it (automatic reinstatement after"
            " payment leaves it alone).",
        ),
        "upstream_outcome_unknown": (
            502,
            "The upstream may or may not have applied a write; it is resent with the same "
            "idempotency key.",
        ),
        "upstream_credentials_missing": (
            409,
            "The upstream account has no api-id and api-token stored (409).",
        ),
        "upstream_sub_account_unknown": (
            400,
            "The upstream does not list a sub-account with this `upstream_id` (400, naming it in "
            "`extra.fields`).",
        ),
        "provisioning_name_exhausted": (400, "No free upstream name could be drawn; try again."),
    }
)
