"""OpenAPI texts of the sub-account operations usage serves (`provisioning_views`): a
summary, a description and examples for every operation. Applied once, when the URLs are
loaded (`usage.api.urls`); field descriptions sit on the serializers (help_text) or come
from accounts' sub-account texts."""

from __future__ import annotations

from accounts.api.openapi import BYTESFLOWS_SUB_ACCOUNT, SUB_ACCOUNT
from core.openapi import COMMON_FIELDS, apply_texts
from core.openapi import example as _ex
from usage.api import provisioning_serializers as ser
from usage.api import provisioning_views as views

_LIST_QUERY_RULE = (
    "An unknown, repeated or malformed query parameter is a 400 `validation_error` naming it."
)

PROVISIONED = {
    **SUB_ACCOUNT,
    "id": 7,
    "upstream_id": "acmepr4k9x2q",
    "label": "Globex residential 2",
    "proxy_username": "customer-acmepr4k9x2q",
    "proxy_password": "Xq7Lm2Pz9Rt4Kw",
    "proxy": "http://customer-acmepr4k9x2q:Xq7Lm2Pz9Rt4Kw@gate.example.com:8000",
    "active_from": None,
    "created_at": "2026-11-03T10:00:01Z",
    "provisioning": 12,
    "initial_allocation": {"id": 31, "bytes": 5368709120, "status": "confirmed", "error_code": ""},
}
PROVISIONING = {
    "id": 12,
    "status": "pending",
    "customer": 1,
    "upstream_account": 1,
    "upstream_id": "acmepr4k9x2q",
    "label": "Globex residential 2",
    "initial_bytes": 5368709120,
    "expires_in_days": 0,
    "sub_account": None,
    "attempts": 1,
    "error_code": "upstream_outcome_unknown",
    "created_by": "key k7x2m9qa",
    "created_at": "2026-11-03T10:00:00Z",
    "settled_at": None,
}
MY_SUB_ACCOUNT = {
    "id": 1,
    "provider": "ipfoxy",
    "upstream_id": "SIM00001",
    "label": "Globex residential",
    "status": "active",
    "active_from": "2026-10-01",
    "active_to": None,
    "created_at": "2026-09-15T09:10:00Z",
    "proxy_username": "customer-SIM00001",
    "proxy_password": "Sim2Kq81Tz04x",
    "proxy": "http://customer-SIM00001:Sim2Kq81Tz04x@gate.example.com:8000",
    "allocated_bytes": 5368709120,
    "used_bytes": 1288490188,
    "remaining_bytes": 4080218932,
    "traffic_as_of": "2026-11-03T09:58:12Z",
}

_OPERATIONS = [
    (
        views.SubAccountProvisionView,
        "post",
        "Provision a sub-account upstream",
        "Creates a new IPFoxy sub-account for one of your customers: Flowbill names it (your "
        "prefix, from your slug, and a random part: 12 letters and digits), gives it a strong "
        "password, records the request (password encrypted) with its own idempotency key, and "
        "sends it at once. 201: the upstream created it; the answer is the sub-account with "
        "its proxy login (`proxy_username`, `proxy_password`, `proxy`) and, when "
        "`initial_bytes` was given, its initial traffic's ledger row (reason `initial`, sent "
        "exactly once). 202: the outcome is not known yet (the upstream rate-limited or did "
        "not answer); the answer is the provisioning, resent with the same key until settled "
        "(never a second account): poll `sub-accounts/provisionings/{id}/`. A refusal creates "
        "nothing: 409 `upstream_insufficient_balance`, 502 with the upstream's code "
        "otherwise. IPFoxy only (BytesFlows publishes no write API: 409 "
        "`provider_has_no_reseller_api`); a suspended customer is a 409 "
        "`customer_suspended`. Webhook `sub_account.provisioned` once it exists.",
        [
            _ex(
                "Provision",
                {
                    "customer": 1,
                    "upstream_account": 1,
                    "label": "Globex residential 2",
                    "initial_bytes": 5368709120,
                },
                request=True,
            ),
            _ex("Created", PROVISIONED, status="201"),
            _ex("Outcome not known yet", PROVISIONING, status="202"),
        ],
    ),
    (
        views.ProvisioningListView,
        "get",
        "List provisionings",
        "Your sub-account creations, newest first; filter `status` and `customer`. A "
        f"`pending` one is being sent (or resent with its key). {_LIST_QUERY_RULE}",
        [_ex("Provisionings", PROVISIONING)],
    ),
    (
        views.ProvisioningDetailView,
        "get",
        "Get a provisioning",
        "One sub-account creation: `pending`, `confirmed` (`sub_account` is its id: read its "
        "proxy login there), `failed` (nothing was created; `error_code`) or `needs_review`.",
        [
            _ex(
                "Confirmed",
                {
                    **PROVISIONING,
                    "status": "confirmed",
                    "sub_account": 7,
                    "attempts": 2,
                    "error_code": "",
                    "settled_at": "2026-11-03T10:01:00Z",
                },
            )
        ],
    ),
    (
        views.SubAccountListCreateView,
        "get",
        "List sub-accounts",
        "The sub-accounts of all your customers, ordered by id; filter `customer`, "
        "`upstream_account` (an id that is not yours is a 404) and `status`. Credentials are "
        "never returned: `has_credentials` says whether some are stored. The proxy login "
        "(`proxy_username`, `proxy_password`, `proxy`) is, for IPFoxy sub-accounts. "
        f"{_LIST_QUERY_RULE}",
        [_ex("Sub-accounts", SUB_ACCOUNT)],
    ),
    (
        views.SubAccountListCreateView,
        "post",
        "Attach a sub-account",
        "Attaches an existing sub-account at an upstream provider (`upstream_id`, the "
        "provider's own identifier) to one of your customers, whose usage it is billed to "
        "(to create a new one upstream, use `sub-accounts/provision/`). An IPFoxy "
        "`upstream_id` is checked against IPFoxy's sub-account list first: one it does not "
        "list is a 400 `upstream_sub_account_unknown` naming `upstream_id`; when IPFoxy "
        "cannot be asked, nothing is attached (503 `upstream_unavailable` or "
        "`upstream_rate_limited`, 502 `upstream_auth_failed`). Its proxy password is kept "
        "from the list. `customer` and `upstream_account` must be yours (another reseller's "
        "id reads like a missing one: a 400 `Invalid pk ... does not exist`). `upstream_id` "
        "is unique among the upstream account's sub-accounts that are not closed (400). "
        "`credentials` are write-only and stored encrypted: BytesFlows needs "
        '`{"token"}` (the account\'s own token), IPFoxy takes `{}`; a missing or foreign key '
        "is a 400 naming it under `credentials`. `active_from` (optional) is the customer's "
        "first day: its usage before it is not billed; absent, all its usage is (an "
        "`upstream_id` a closed sub-account had starts the day after that one's last day, and "
        "an earlier `active_from` is a 400). It starts `active` or `suspended` (closing is "
        "`close/`; `closed` or an `active_to` here is a 400). Only `active` sub-accounts are "
        "synced (and closed ones until their last day ends).",
        [
            _ex(
                "IPFoxy",
                {
                    "customer": 1,
                    "upstream_account": 1,
                    "upstream_id": "SIM00001",
                    "label": "Globex residential",
                    "active_from": "2026-10-01",
                },
                request=True,
            ),
            _ex("Attached", SUB_ACCOUNT, status="201"),
            _ex("BytesFlows", BYTESFLOWS_SUB_ACCOUNT, status="201"),
        ],
    ),
    (
        views.MySubAccountListView,
        "get",
        "List my sub-accounts",
        "The customer's own sub-accounts, ordered by id; filter `status`. Each with its proxy "
        "login (`proxy_username`, `proxy_password`, and `proxy`, ready to paste, when a "
        "gateway is configured) and its remaining traffic as the upstream last counted it "
        "(`remaining_bytes`, `allocated_bytes`, `used_bytes` at `traffic_as_of`; null when "
        "not known yet). No upstream account and no other credentials. "
        f"{_LIST_QUERY_RULE}",
        [_ex("Sub-accounts", MY_SUB_ACCOUNT)],
    ),
]

_MY_SUB_ACCOUNT_FIELDS = {
    **COMMON_FIELDS,
    "provider": "Its upstream provider: `ipfoxy` or `bytesflows`.",
    "label": "Free text to tell it apart; may be empty.",
    "status": "`active`, `suspended` (not synced) or `closed` (through `active_to`).",
}
_PROVISIONING_FIELDS = {
    **COMMON_FIELDS,
    "customer": "The customer the sub-account is for.",
    "created_at": "When it was asked for (UTC).",
}

apply_texts(
    _OPERATIONS,
    [
        ([ser.CustomerSubAccountOutputSerializer], _MY_SUB_ACCOUNT_FIELDS),
        ([ser.ProvisioningOutputSerializer], _PROVISIONING_FIELDS),
    ],
)
