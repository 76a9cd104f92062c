"""OpenAPI texts of the accounts operations and fields: a summary, a description and examples
for every operation, a description for every field. Applied once, when the URLs are loaded
(`accounts.api.urls`), through core.openapi.

The settings views (`ResellerSettingsView`, `ResellerLogoView`) carry their texts inline.
Field descriptions are per resource (a `name` or `status` means something else on a key, a
customer or a sub-account); help_text already on a serializer or model field wins.
"""

from __future__ import annotations

from accounts.api import serializers as ser
from accounts.api import views
from core.openapi import COMMON_FIELDS, apply_texts
from core.openapi import example as _ex

# --- examples (shapes taken from real responses) ---------------------------------------------
# A list operation's example is one item: drf-spectacular puts it in the pagination envelope
# as `results: [item]` (a list given here would come out as `results: [[...]]`).

UPSTREAM_ACCOUNT = {
    "id": 1,
    "name": "IPFoxy main",
    "provider": "ipfoxy",
    "base_url": "",
    "has_credentials": True,
    "cost_per_gb": "0.800000",
    "mb_bytes": 1048576,
    "requests_per_minute": 50,
    "gateway_host": "gate.ipfoxy.example",
    "gateway_port": 7777,
    "proxy_username_format": "customer-{account}",
    "is_active": True,
    "created_at": "2026-09-01T10:00:00Z",
}
BYTESFLOWS_ACCOUNT = {
    **UPSTREAM_ACCOUNT,
    "id": 2,
    "name": "BytesFlows",
    "provider": "bytesflows",
    "has_credentials": False,
    "cost_per_gb": "1.200000",
    "created_at": "2026-09-01T10:05:00Z",
}
CUSTOMER = {
    "id": 1,
    "name": "Globex GmbH",
    "email": "billing@globex.example",
    "cc_emails": "cfo@globex.example, ap@globex.example",
    "address_line1": "Friedrichstr. 10",
    "address_line2": "",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
    "tax_id": "DE811907980",
    "tax_rate": "19.0000",
    "currency": "USD",
    "status": "active",
    "traffic_policy": "credit_limit",
    "credit_limit": "500.00",
    "topup_bytes": 10737418240,
    "topup_below_bytes": 2147483648,
    "payment_terms_days": None,
    "suspended_at": None,
    "suspension_reason": "",
    "suspended_by": "",
    "credit_limit_reached_at": None,
    "created_at": "2026-09-15T08:30:00Z",
}
#: The fields of `CUSTOMER` the customer's own `me/` does not show.
_RESELLER_ONLY = {
    "created_at", "traffic_policy", "credit_limit", "topup_bytes", "topup_below_bytes",
    "payment_terms_days",
    "suspended_at", "suspension_reason", "suspended_by", "credit_limit_reached_at",
}  # fmt: skip
CUSTOMER_KEY = {
    "id": 4,
    "name": "Globex shop",
    "prefix": "k7x2m9qa",
    "scope": "customer",
    "customer": 1,
    "created_at": "2026-09-15T09:00:00Z",
    "created_by_key": 1,
    "last_used_at": "2026-11-02T08:15:00Z",
    "revoked_at": None,
}
RESELLER_KEY = {
    "id": 1,
    "name": "backoffice",
    "prefix": "d9av4p9r",
    "scope": "reseller",
    "customer": None,
    "created_at": "2026-09-01T09:00:00Z",
    "created_by_key": None,
    "last_used_at": "2026-11-02T08:14:00Z",
    "revoked_at": None,
}
SUB_ACCOUNT = {
    "id": 1,
    "customer": 1,
    "upstream_account": 1,
    "provider": "ipfoxy",
    "upstream_id": "SIM00001",
    "label": "Globex residential",
    "has_credentials": False,
    "proxy_username": "customer-SIM00001",
    "proxy_password": "Sim2Kq81Tz04x",
    "proxy": "http://customer-SIM00001:Sim2Kq81Tz04x@gate.example.com:8000",
    "status": "active",
    "active_from": "2026-10-01",
    "active_to": None,
    "created_at": "2026-09-15T09:10:00Z",
}
BYTESFLOWS_SUB_ACCOUNT = {
    **SUB_ACCOUNT,
    "id": 2,
    "upstream_account": 2,
    "provider": "bytesflows",
    "upstream_id": "globex-dc-1",
    "label": "Globex datacenter",
    "has_credentials": True,
    "proxy_username": None,
    "proxy_password": None,
    "proxy": None,
    "active_from": None,
    "created_at": "2026-09-15T09:20:00Z",
}
SUB_ACCOUNT_DETAIL = {
    **SUB_ACCOUNT,
    "assignments": [{"customer": 1, "starts_on": "2026-10-01", "ends_on": None}],
}
MOVED_SUB_ACCOUNT = {
    **SUB_ACCOUNT,
    "customer": 2,
    "active_from": "2026-10-16",
    "assignments": [
        {"customer": 1, "starts_on": "2026-10-01", "ends_on": "2026-10-16"},
        {"customer": 2, "starts_on": "2026-10-16", "ends_on": None},
    ],
}
CLOSED_SUB_ACCOUNT = {
    **SUB_ACCOUNT_DETAIL,
    "status": "closed",
    "active_to": "2026-10-20",
    "assignments": [{"customer": 1, "starts_on": "2026-10-01", "ends_on": "2026-10-21"}],
}
ME = {
    **{k: v for k, v in CUSTOMER.items() if k not in _RESELLER_ONLY},
    "reseller": {
        "name": "Acme Proxies Ltd",
        "currency": "USD",
        "timezone": "Europe/Berlin",
        "sender_email": "billing@acme.example",
    },
}


def _new_key(row: dict, raw_key: str) -> dict:
    return {**row, "last_used_at": None, "created_at": "2026-11-03T10:00:00Z", "key": raw_key}


_PERIOD_INVOICED = (
    "Cannot move it away: Globex GmbH has invoice ACME-2026-0042 issued for 2026-10-01 to "
    "2026-10-31, so its usage from 2026-10-16 cannot change hands. Choose 2026-11-01 or later."
)

_CURRENCY_LOCKED = (
    "The customer has subscriptions billed in USD; its currency cannot change. "
    "Create a new customer for another currency."
)

# --- operations ------------------------------------------------------------------------------

_LIST_QUERY_RULE = (
    "An unknown, repeated or malformed query parameter is a 400 `validation_error` naming it."
)

_OPERATIONS = [
    # upstream accounts
    (
        views.UpstreamAccountListCreateView,
        "get",
        "List upstream accounts",
        "Your connections to upstream proxy providers (IPFoxy, BytesFlows), ordered by id; "
        "filter `provider` and `is_active`. Credentials are never returned: "
        f"`has_credentials` says whether some are stored. {_LIST_QUERY_RULE}",
        [_ex("Upstream accounts", UPSTREAM_ACCOUNT)],
    ),
    (
        views.UpstreamAccountListCreateView,
        "post",
        "Connect an upstream account",
        "Stores your account at an upstream provider, which syncs usage for the sub-accounts "
        "attached to it. `provider` is fixed once created. `credentials` are write-only and "
        'stored encrypted: IPFoxy needs `{"api_id", "api_token"}`; BytesFlows takes `{}` (its '
        "tokens go on each sub-account). A missing or foreign credential key is a 400 naming "
        "it under `credentials`. An empty `base_url` means the provider's API; any other must "
        "be http(s) without user info, query or fragment, on a host of the provider's "
        "allowlist (`FLOWBILL_UPSTREAM_ALLOWED_HOSTS_<PROVIDER>`), else a 400 naming "
        "`base_url`. A `name` already used by another of your upstream accounts is a 400.",
        [
            _ex(
                "IPFoxy",
                {
                    "name": "IPFoxy main",
                    "provider": "ipfoxy",
                    "credentials": {"api_id": "10234", "api_token": "your-ipfoxy-api-token"},
                    "cost_per_gb": "0.80",
                },
                request=True,
            ),
            _ex(
                "BytesFlows",
                {"name": "BytesFlows", "provider": "bytesflows", "cost_per_gb": "1.20"},
                request=True,
            ),
            _ex("Created", UPSTREAM_ACCOUNT, status="201"),
            _ex("Created (BytesFlows)", BYTESFLOWS_ACCOUNT, status="201"),
        ],
    ),
    (
        views.UpstreamAccountDetailView,
        "get",
        "Get an upstream account",
        "One of your upstream accounts. Its credentials are never returned: `has_credentials` "
        "says whether some are stored.",
        [_ex("Upstream account", UPSTREAM_ACCOUNT)],
    ),
    (
        views.UpstreamAccountDetailView,
        "patch",
        "Change an upstream account",
        "Changes the fields given. `provider` cannot change (400, `This field cannot be "
        "changed.`). New `credentials` replace the stored ones as a whole and are checked "
        "for the provider. A new `base_url` must pass the provider's host allowlist (400 "
        "naming `base_url`); on an IPFoxy account it also needs `credentials` with `api_id` "
        "and `api_token` in the same request, else a 400 naming `credentials` (whoever "
        "redirects the credentials must know them). `is_active: false` stops its syncs.",
        [
            _ex("Switch off", {"is_active": False}, request=True),
            _ex(
                "Move (IPFoxy)",
                {
                    "base_url": "https://apis.ipfoxy.com",
                    "credentials": {"api_id": "10234", "api_token": "your-ipfoxy-api-token"},
                },
                request=True,
            ),
            _ex("Upstream account", {**UPSTREAM_ACCOUNT, "is_active": False}),
            _ex(
                "Base URL without credentials",
                {
                    "code": "validation_error",
                    "message": "Invalid input.",
                    "extra": {
                        "fields": {
                            "credentials": [
                                "Changing base_url requires entering the api_id and "
                                "api_token again."
                            ]
                        }
                    },
                },
                status="400",
            ),
        ],
    ),
    # customers
    (
        views.CustomerListCreateView,
        "get",
        "List customers",
        f"Your customers, ordered by id; filter `status`. {_LIST_QUERY_RULE}",
        [_ex("Customers", CUSTOMER)],
    ),
    (
        views.CustomerListCreateView,
        "post",
        "Create a customer",
        "Adds a customer; `name` and `email` are required. `currency` (ISO 4217, upper case) "
        "empty or absent takes your reseller's currency; `country` is ISO 3166-1 alpha-2 "
        "(upper case, e.g. DE); `tax_rate` is a percent from 0 to 100 (`19` = 19 %); "
        "`cc_emails` is a comma-separated list of further invoice recipients. A bad value is "
        "a 400 `validation_error` naming the field, and an unknown field is refused. The "
        "customer's own API keys are created under `customers/{id}/api-keys/`.",
        [
            _ex(
                "Create",
                {
                    "name": "Globex GmbH",
                    "email": "billing@globex.example",
                    "cc_emails": "cfo@globex.example, ap@globex.example",
                    "address_line1": "Friedrichstr. 10",
                    "city": "Berlin",
                    "postal_code": "10117",
                    "country": "DE",
                    "tax_id": "DE811907980",
                    "tax_rate": "19",
                },
                request=True,
            ),
            _ex("Created", CUSTOMER, status="201"),
        ],
    ),
    (
        views.CustomerDetailView,
        "get",
        "Get a customer",
        "One of your customers.",
        [_ex("Customer", CUSTOMER)],
    ),
    (
        views.CustomerDetailView,
        "patch",
        "Change a customer",
        "Changes the fields given (same rules as on create). `currency` of a customer that "
        "has any subscription, live or ended, or any invoice cannot change: 409 "
        "`customer_currency_locked` "
        "(its plans and invoices are in that currency; create a new customer instead); an "
        "empty `currency` means your reseller's. New details and tax rate apply to invoices "
        "computed from then on; issued invoices keep the ones they were issued with. "
        "`status` changes only through `suspend/` and `reinstate/` (suspending cuts the "
        "customer's IPFoxy sub-accounts off upstream; its keys keep read access and its "
        "usage is still billed).",
        [
            _ex("New tax rate", {"tax_rate": "20", "tax_id": "DE811907980"}, request=True),
            _ex("Customer", {**CUSTOMER, "tax_rate": "20.0000"}),
            _ex(
                "Currency locked",
                {
                    "code": "customer_currency_locked",
                    "message": _CURRENCY_LOCKED,
                    "extra": {"fields": {"currency": [_CURRENCY_LOCKED]}},
                },
                status="409",
            ),
        ],
    ),
    # a customer's API keys
    (
        views.CustomerApiKeyListCreateView,
        "get",
        "List a customer's API keys",
        "The API keys of one of your customers (404 if the customer is not yours), revoked "
        "ones included, ordered by id; filter `revoked`. Only the public `prefix` is shown, "
        f"never the key. {_LIST_QUERY_RULE}",
        [_ex("Keys", CUSTOMER_KEY)],
    ),
    (
        views.CustomerApiKeyListCreateView,
        "post",
        "Create a customer API key",
        "Creates a customer-scope key for this customer (404 if the customer is not yours). "
        "It works on the customer endpoints (`/api/v1/me/`, `/api/v1/sub-accounts/`, usage, "
        "invoices) and sees this customer's data only. The response's `key` is the full key "
        "and the only time it is shown (Flowbill keeps its hash): store it now. A retry with "
        "the same `Idempotency-Key` within 24 hours replays this response to the same caller. "
        "A blank `name` is a 400.",
        [
            _ex("Create", {"name": "Globex shop"}, request=True),
            _ex(
                "Created",
                _new_key(CUSTOMER_KEY, "fb_k7x2m9qa_3FVQSd5whn9PW_fO8OOMVDic_Bn8quqb1UlTVi33rxY"),
                status="201",
            ),
        ],
    ),
    (
        views.CustomerApiKeyDetailView,
        "get",
        "Get a customer API key",
        "One key of one of your customers: name, prefix, use and revocation dates; never the "
        "key itself. A key of another customer is a 404.",
        [_ex("Key", CUSTOMER_KEY)],
    ),
    # Revoking: the view's own description.
    (views.CustomerApiKeyDetailView, "delete", "Revoke a customer API key", None, []),
    # the reseller's own API keys
    (
        views.ResellerApiKeyListCreateView,
        "get",
        "List your API keys",
        "Your reseller's own keys, revoked ones included (`revoked_at`), ordered by id; "
        "filter `revoked`. Customer keys are listed under their customer. Never the key "
        f"itself: only its public `prefix`. {_LIST_QUERY_RULE}",
        [_ex("Keys", RESELLER_KEY)],
    ),
    (
        views.ResellerApiKeyListCreateView,
        "post",
        "Create a reseller API key",
        "Creates a reseller-scope key (the `/api/v1/reseller/` endpoints). The response's "
        "`key` is the full key and the only time it is shown (Flowbill keeps its hash); a "
        "retry with the same `Idempotency-Key` within 24 hours replays this response to the "
        "same caller. Only a logged-in staff session may do this: with an API key it is a "
        "403 `staff_session_required`, so a leaked key cannot mint keys that outlive its "
        "revocation (staff also use the admin or `manage.py create_api_key`).",
        [
            _ex("Create", {"name": "backoffice"}, request=True),
            _ex(
                "Created",
                _new_key(RESELLER_KEY, "fb_d9av4p9r_qu4P8DXzGmEMPCTjGoDiZrweNMEhZ-c2UULdJwsEBns"),
                status="201",
            ),
            _ex(
                "With an API key",
                {
                    "code": "staff_session_required",
                    "message": "Reseller keys are created by staff (admin, session or "
                    "`manage.py create_api_key`), not with an API key.",
                    "extra": {},
                },
                status="403",
            ),
        ],
    ),
    (
        views.ResellerApiKeyDetailView,
        "get",
        "Get one of your API keys",
        "One of your reseller keys: name, prefix, use and revocation dates; never the key "
        "itself. A customer key's id is a 404 here (see the customer's keys).",
        [_ex("Key", RESELLER_KEY)],
    ),
    # Revoking: the view's own description.
    (
        views.ResellerApiKeyDetailView,
        "delete",
        "Revoke one of your API keys",
        None,
        [
            _ex(
                "Revoked, with the customer keys it created",
                {
                    **RESELLER_KEY,
                    "revoked_at": "2026-11-03T10:00:00Z",
                    "customer_keys_revoked": 2,
                },
            )
        ],
    ),
    # sub-accounts
    (
        views.SubAccountDetailView,
        "get",
        "Get a sub-account",
        "One sub-account of one of your customers, with every customer that held it "
        "(`assignments`, oldest first: its usage of a day is billed to the customer holding it "
        "that day). Its credentials are never returned: `has_credentials` says whether some "
        "are stored.",
        [_ex("Sub-account", SUB_ACCOUNT_DETAIL), _ex("Moved", MOVED_SUB_ACCOUNT)],
    ),
    (
        views.SubAccountDetailView,
        "patch",
        "Change a sub-account",
        "Changes `label`, `credentials` and `status` (`active` or `suspended`). `upstream_account` "
        "and `upstream_id` are fixed, as usage and invoices refer to them; `customer`, "
        "`active_from` and `active_to` change by moving (`move/`) or closing (`close/`) it "
        "(400, `This field cannot be changed.`). New `credentials` replace the stored ones. "
        "`suspended` stops syncing it; usage already synced stays billable. `closed` is a 400 "
        "(use `close/`), and a closed sub-account's status cannot change (409 "
        "`sub_account_closed`).",
        [
            _ex("Suspend", {"status": "suspended"}, request=True),
            _ex("Sub-account", {**SUB_ACCOUNT_DETAIL, "status": "suspended"}),
        ],
    ),
    (
        views.SubAccountDetailView,
        "delete",
        "Delete a sub-account",
        "Deletes a sub-account that was never billed (a typo'd `upstream_id`, one attached to "
        "the wrong customer), with its empty usage rows and sync history: 204. Anything that "
        "would lose a billing record is a 409: it is on an invoice, draft or issued "
        "(`sub_account_billed`); it has usage not invoiced yet (`sub_account_has_usage`); "
        "traffic was allocated to it upstream (`sub_account_in_use`). Close it instead. "
        "Nothing changes upstream.",
        [],
    ),
    (
        views.SubAccountMoveView,
        "post",
        "Move a sub-account to another customer",
        "From `from` on (YYYY-MM-DD, your timezone) the sub-account is held by `customer`: its "
        "usage of each day is billed to the customer that held it that day, so the month of "
        "the move is split between the two invoices (each under its own plans and currency). "
        "`customer` must be one of yours (another reseller's id reads like a missing one: a "
        "400 `Invalid pk ... does not exist`) and not the current one (400). A day before the "
        "current customer's period starts is a 409 `sub_account_day_before_start`; a day in a "
        "period already invoiced (finalized or paid) for either customer is a 409 "
        "`sub_account_period_invoiced` naming the invoice and the first day allowed; a closed "
        "sub-account is a 409 `sub_account_closed`. Drafts follow at their next refresh. The "
        "upstream sub-account and its login do not change.",
        [
            _ex("Move", {"customer": 2, "from": "2026-10-16"}, request=True),
            _ex("Moved", MOVED_SUB_ACCOUNT),
            _ex(
                "Period invoiced",
                {
                    "code": "sub_account_period_invoiced",
                    "message": _PERIOD_INVOICED,
                    "extra": {
                        "customer": 1,
                        "invoice": "ACME-2026-0042",
                        "first_free_day": "2026-11-01",
                    },
                },
                status="409",
            ),
        ],
    ),
    # customer scope
    (
        views.MeView,
        "get",
        "Who am I",
        "The customer this key acts for: its billing details as printed on its invoices, "
        "tax rate, currency and status, with its reseller's public details (name, currency, "
        "timezone, sender email). Read-only: the reseller changes these.",
        [_ex("Me", ME)],
    ),
]

# --- field descriptions ----------------------------------------------------------------------

_API_KEY_FIELDS = {
    **COMMON_FIELDS,
    "name": "A label to tell keys apart (1-100 characters).",
    "prefix": "The key's public part (8 lowercase letters and digits); the key reads "
    "`fb_<prefix>_<secret>`.",
    "scope": "`reseller` (the `/api/v1/reseller/` endpoints) or `customer` (the customer "
    "endpoints, one customer's data).",
    "customer": "The customer the key acts for; null for a reseller key.",
    "created_by_key": "The id of the API key whose request created this key (a reseller key "
    "creating customer keys): revoking that key revokes this one too. Null when a staff "
    "login or a command created it.",
    "last_used_at": "When the key last authenticated a request (UTC, to the minute); null "
    "if never.",
    "revoked_at": "When the key was revoked (UTC); null while it works.",
}

_CUSTOMER_FIELDS = {
    **COMMON_FIELDS,
    "name": "The customer's name, printed on its invoices.",
    "email": "Billing email: invoices and notices go here (and to `cc_emails`).",
    "address_line1": "First address line, printed on invoices.",
    "address_line2": "Second address line, printed on invoices.",
    "city": "City, printed on invoices.",
    "postal_code": "Postal code, printed on invoices.",
    "tax_id": "The customer's tax/VAT id, printed on its invoices (up to 64 characters).",
    "tax_rate": "Tax rate as a percent from 0 to 100, up to 4 decimals (`19.0000` = 19 %), "
    "a decimal string; charged on its invoices' subtotal.",
    "status": "`active` or `suspended` (by `suspend/`, or automatically for an overdue "
    "invoice): a suspended customer's IPFoxy sub-accounts are cut off upstream and get no "
    "traffic; its keys keep read access and its usage is still billed.",
    "currency": "ISO 4217 code of the customer's invoices, stored on the customer (the "
    "reseller's when it was created without one).",
    "reseller": "The reseller that bills this customer: its public details.",
}

_RESELLER_FIELDS = {"name": "The reseller's legal name, printed on invoices."}

_UPSTREAM_ACCOUNT_FIELDS = {
    **COMMON_FIELDS,
    "name": "Your name for this connection, unique among your upstream accounts.",
    "provider": "`ipfoxy` or `bytesflows`; fixed at creation.",
    "has_credentials": "Whether credentials are stored (write-only, kept encrypted, never "
    "returned).",
    "cost_per_gb": "What the upstream charges you per GB as it counts GB (see `mb_bytes`), "
    "a decimal string in your currency (up to 6 places); for cost and margin figures.",
    "is_active": "False: switched off, no syncs (scheduled or on demand).",
}

_SUB_ACCOUNT_FIELDS = {
    **COMMON_FIELDS,
    "customer": "The customer holding it now (one of yours); changes by a move (`move/`).",
    "upstream_account": "The upstream account it lives on (one of yours); fixed at creation.",
    "provider": "Its upstream provider: `ipfoxy` or `bytesflows`.",
    "label": "Free text to tell it apart; may be empty.",
    "has_credentials": "Whether credentials (a BytesFlows token) are stored (write-only, kept "
    "encrypted, never returned).",
    "status": "`active` (synced), `suspended` (not synced; usage already synced stays "
    "billable) or `closed` (by `close/`: synced through its last day, never after).",
    "active_from": "The current customer's first day (reseller's timezone): usage before it "
    "is not billed to this customer; null: since its first usage. Set at creation or by a "
    "move.",
    "active_to": "Its last day (inclusive), set by `close/`; null while it is not closed. "
    "Usage after it is not billed.",
}

_FIELDS = [
    (
        [ser.ApiKeyCreateInputSerializer, ser.ApiKeyOutputSerializer],
        _API_KEY_FIELDS,
    ),
    ([ser.ApiKeyCreatedOutputSerializer, ser.ApiKeyRevokedOutputSerializer], _API_KEY_FIELDS),
    (
        [
            ser.CustomerCreateInputSerializer,
            ser.CustomerUpdateInputSerializer,
            ser.CustomerOutputSerializer,
            ser.MeOutputSerializer,
        ],
        _CUSTOMER_FIELDS,
    ),
    ([ser.MeResellerOutputSerializer], _RESELLER_FIELDS),
    (
        [
            ser.UpstreamAccountCreateInputSerializer,
            ser.UpstreamAccountUpdateInputSerializer,
            ser.UpstreamAccountOutputSerializer,
        ],
        _UPSTREAM_ACCOUNT_FIELDS,
    ),
    (
        [
            ser.SubAccountCreateInputSerializer,
            ser.SubAccountUpdateInputSerializer,
            ser.SubAccountOutputSerializer,
            ser.SubAccountDetailOutputSerializer,
        ],
        _SUB_ACCOUNT_FIELDS,
    ),
]

# The update serializer inherits the create one's `currency` text ("empty or absent: the
# reseller's"), which is wrong for a PATCH (absent leaves it unchanged): it gets its own.
ser.CustomerUpdateInputSerializer.Meta.extra_kwargs = {
    **ser.CustomerCreateInputSerializer.Meta.extra_kwargs,
    "currency": {
        **ser.CustomerCreateInputSerializer.Meta.extra_kwargs["currency"],
        "help_text": "An ISO 4217 currency in circulation; empty: the reseller's. Refused "
        "(409 `customer_currency_locked`) once the customer has any subscription or invoice.",
    },
}

apply_texts(_OPERATIONS, _FIELDS)
