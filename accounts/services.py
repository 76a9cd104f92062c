"""Writes of the accounts domain. Each validates the whole object (model `full_clean`).

The rules every entry point shares live here once: which credentials each provider needs
(`CREDENTIAL_KEYS`, checked for the API, the admin and any caller), an IPFoxy base URL
that moves only with its credentials, the reseller settings only the platform operator
changes, and staff logins (`staff_user_create`: always staff, never superuser).
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount, User
from accounts.sub_accounts import sub_account_check_open, sub_account_start_check
from core.errors import ApplicationError


def _save_validated(obj):
    obj.full_clean()
    obj.save()
    return obj


@transaction.atomic
def reseller_create(
    *, name: str, slug: str, currency: str = "USD", timezone: str = "UTC", **fields: Any
) -> Reseller:
    """A new reseller (the platform operator's act: admin, `create_reseller`). Its invoice
    prefix must not be another reseller's (`reseller_invoice_prefix_check_unique`)."""
    reseller = Reseller(name=name, slug=slug, currency=currency, timezone=timezone, **fields)
    reseller_invoice_prefix_check_unique(reseller=reseller, prefix=reseller.invoice_prefix)
    return _save_validated(reseller)


def _refuse_status_change(customer: Customer, fields: Mapping[str, Any]) -> None:
    """`status` is changed by suspending and reinstating only (usage.services.suspension)."""
    if "status" in fields and fields["status"] != customer.status:
        raise ValidationError({"status": SUSPEND_WITH_ACTION})


def customer_currency_default(*, reseller: Reseller, currency: str | None) -> str:
    """A customer's currency: the one given, or the reseller's when none is (absent or
    empty). The one place that default is applied, when the currency is written (create, and
    an update that empties it): every customer stores its currency (a check constraint), so
    nothing reads "empty, so the reseller's", and a later change of the reseller's currency
    leaves its customers' alone."""
    return currency or reseller.currency


def customer_create(*, reseller: Reseller, name: str, email: str, **fields: Any) -> Customer:
    """Create a customer (active) in `currency`, or the reseller's when none is given
    (`customer_currency_default`)."""
    _refuse_status_change(Customer(), fields)
    fields["currency"] = customer_currency_default(
        reseller=reseller, currency=fields.get("currency")
    )
    return _save_validated(Customer(reseller=reseller, name=name, email=email, **fields))


def upstream_account_create(
    *,
    reseller: Reseller,
    provider: str,
    name: str,
    credentials: Mapping[str, str] | None = None,
    base_url: str = "",
    cost_per_gb: Decimal = Decimal("0"),
    **fields: Any,
) -> UpstreamAccount:
    """A new upstream connection; its `credentials` must be exactly the provider's
    (`credentials_check`: IPFoxy `api_id` and `api_token`, BytesFlows none)."""
    credentials = dict(credentials or {})
    if provider in Provider.values:  # an unknown provider is the model's error
        credentials = credentials_check(kind=UPSTREAM, provider=provider, credentials=credentials)
    return _save_validated(
        UpstreamAccount(
            reseller=reseller,
            provider=provider,
            name=name,
            credentials=credentials,
            base_url=base_url,
            cost_per_gb=cost_per_gb,
            **fields,
        )
    )


def sub_account_create(
    *,
    customer: Customer,
    upstream_account: UpstreamAccount,
    upstream_id: str,
    credentials: Mapping[str, str] | None = None,
    **fields: Any,
) -> SubAccount:
    """Attach an upstream sub-account to a customer of the same reseller; its `credentials`
    must be exactly the provider's (`credentials_check`: a BytesFlows token, IPFoxy none).

    `active_from` (optional) is the customer's first day; without it all the sub-account's
    usage is billed to the customer, except that an `upstream_id` a closed sub-account had
    starts the day after that one's last day (`sub_account_start_check`). It starts open:
    closing is `accounts.sub_accounts.sub_account_close`, so neither `active_to` nor the
    status `closed` is taken here."""
    _refuse_closing_fields(fields)
    fields["active_from"] = sub_account_start_check(
        upstream_account=upstream_account,
        upstream_id=upstream_id,
        active_from=fields.get("active_from"),
    )
    return _save_validated(
        SubAccount(
            customer=customer,
            upstream_account=upstream_account,
            upstream_id=upstream_id,
            credentials=credentials_check(
                kind=SUB_ACCOUNT,
                provider=upstream_account.provider,
                credentials=credentials or {},
            ),
            **fields,
        )
    )


# --- credentials: which secrets each provider needs -----------------------------------------

UPSTREAM = "upstream_account"
SUB_ACCOUNT = "sub_account"
#: The credential keys of each provider, per kind of object: exactly these, every one
#: required. IPFoxy signs with the upstream account's api-id and api-token; BytesFlows has
#: one token per sub-account. The one copy of this rule: the API serializers, the admin forms
#: and the services all check through `credentials_check` / `credentials_resolve`.
CREDENTIAL_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    (UPSTREAM, Provider.IPFOXY): ("api_id", "api_token"),
    (UPSTREAM, Provider.BYTESFLOWS): (),
    (SUB_ACCOUNT, Provider.IPFOXY): (),
    (SUB_ACCOUNT, Provider.BYTESFLOWS): ("token",),
}


class InvalidCredentials(ValidationError):
    """Credentials that are not the provider's. `problems` maps each offending key to its
    messages (never the values); as a plain `ValidationError` it names `credentials`."""

    def __init__(self, problems: Mapping[str, list[str]]):
        self.problems = {key: list(messages) for key, messages in problems.items()}
        super().__init__(
            {
                "credentials": [
                    f"{key}: {message}"
                    for key, messages in self.problems.items()
                    for message in messages
                ]
            }
        )


def credential_keys(*, kind: str) -> tuple[str, ...]:
    """Every credential key some provider takes for `kind` (the admin form's inputs)."""
    keys = (key for (k, _), names in CREDENTIAL_KEYS.items() if k == kind for key in names)
    return tuple(dict.fromkeys(keys))


def credentials_check(
    *, kind: str, provider: str, credentials: Mapping[str, str]
) -> dict[str, str]:
    """`credentials` if they are exactly what `provider` needs for `kind` (every required key
    non-blank, no other key), else `InvalidCredentials` naming each key."""
    required = CREDENTIAL_KEYS[(kind, provider)]
    problems = {
        key: [f"Not a {provider} credential."] for key in sorted(set(credentials) - set(required))
    }
    for key in required:
        if not str(credentials.get(key, "")).strip():
            problems[key] = ["This field is required."]
    if problems:
        raise InvalidCredentials(dict(sorted(problems.items())))
    return dict(credentials)


def credentials_entered(given: Mapping[str, str] | None) -> dict[str, str]:
    """The keys of a write-only form that were typed in (an empty input keeps the stored
    value, so it is no entry)."""
    return {key: value for key, value in (given or {}).items() if str(value).strip()}


def credentials_resolve(
    *,
    kind: str,
    provider: str,
    stored: Mapping[str, str],
    given: Mapping[str, str] | None,
    keep_stored: bool = False,
) -> dict[str, str] | None:
    """The credentials to store after a write, checked (`credentials_check`), or None when
    they do not change. `given` replaces the stored ones as a whole (the API); with
    `keep_stored` (the admin's write-only inputs, never pre-filled) each key typed in replaces
    its stored value and the others stay, and nothing typed in changes nothing."""
    if given is None:
        return None
    if keep_stored:
        given = credentials_entered(given)
        if not given:
            return None
        required = CREDENTIAL_KEYS[(kind, provider)]
        given = {**{k: v for k, v in stored.items() if k in required}, **given}
    return credentials_check(kind=kind, provider=provider, credentials=given)


def encrypted_fields() -> list[tuple[type, str]]:
    """Every model field holding encrypted secrets, as (model, field name): found from the
    app registry (any installed app's `EncryptedJSONField`, e.g. webhook signing secrets),
    so accounts need not import the apps that store them."""
    from django.apps import apps

    from accounts.crypto import EncryptedJSONField

    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedJSONField)
    ]


def secrets_rotate(*, batch_size: int = 500, progress=None) -> int:
    """Re-encrypt every stored secret under the first key of FLOWBILL_ENCRYPTION_KEYS.

    Each value is read with whichever configured key can decrypt it and written back
    encrypted with the first key; batches run in their own transactions with the rows
    locked. Safe to re-run. Returns the number of values rewritten.
    """
    rotated = 0
    for model, field in encrypted_fields():
        ids = list(model.objects.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            with transaction.atomic():
                for obj in model.objects.select_for_update().filter(pk__in=chunk).only(field):
                    model.objects.filter(pk=obj.pk).update(**{field: getattr(obj, field)})
                    rotated += 1
            if progress:
                progress(len(chunk))
    return rotated


#: Fields the update services accept; identity fields (tenant, provider, upstream id) are
#: fixed at creation because usage and invoices already refer to them.
CUSTOMER_UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "email",
        "cc_emails",
        "address_line1",
        "address_line2",
        "city",
        "postal_code",
        "country",
        "tax_id",
        "tax_rate",
        "currency",
        "status",
        "traffic_policy",
        "credit_limit",
        "topup_bytes",
        "topup_below_bytes",
        "payment_terms_days",
    }
)
#: Said when `status` is set directly: suspending cuts access upstream, so it is an action.
SUSPEND_WITH_ACTION = (
    "Suspend or reinstate with POST /api/v1/reseller/customers/{id}/suspend/ or .../reinstate/ "
    "(admin: the Suspend / Reinstate buttons)."
)
UPSTREAM_ACCOUNT_UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "base_url",
        "credentials",
        "cost_per_gb",
        "mb_bytes",
        "requests_per_minute",
        "is_active",
        "gateway_host",
        "gateway_port",
        "proxy_username_format",
    }
)
#: A sub-account's customer and dates change only through `accounts.sub_accounts` (move,
#: close): they decide whom its usage is billed to.
SUB_ACCOUNT_UPDATABLE_FIELDS = frozenset({"label", "credentials", "status"})
CLOSE_WITH_ACTION = "Close a sub-account with its close action (it sets the last day billed)."


def _refuse_closing_fields(fields: Mapping[str, Any]) -> None:
    """`closed` and `active_to` are set by `sub_account_close` only."""
    if fields.get("status") == SubAccount.Status.CLOSED:
        raise ValidationError({"status": CLOSE_WITH_ACTION})
    if fields.get("active_to") is not None:
        raise ValidationError({"active_to": CLOSE_WITH_ACTION})


def _update_validated(obj, allowed: frozenset[str], fields: Mapping[str, Any]):
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(obj, name, dict(value) if name == "credentials" else value)
    obj.full_clean()
    if fields:
        obj.save(update_fields=[*fields])
    return obj


def customer_check_currency_change(*, customer: Customer, currency: str) -> None:
    """Refuse (`customer_currency_locked`) to change the currency of a customer that has
    any subscription, live or ended, or any invoice (a draft, issued or void): its plans,
    drafts and invoices are priced in the current currency, a switch would make the next
    billing run unable to rate it, and its credit notes, adjustments and balances would mix
    currencies. An unchanged currency (or an empty one that defaults to the same) is always
    fine."""
    new = customer_currency_default(reseller=customer.reseller, currency=currency)
    old = customer.currency
    if new == old or customer.pk is None:
        return
    # Subscriptions and invoices live in billing, above accounts: asked through the
    # reverse relations.
    if customer.subscriptions.exists():
        held = "subscriptions billed"
    elif customer.invoices.exists():
        held = "invoices"
    else:
        return
    message = (
        f"The customer has {held} in {old}; its currency cannot change. "
        "Create a new customer for another currency."
    )
    raise ApplicationError(
        "customer_currency_locked", message, extra={"fields": {"currency": [message]}}
    )


@transaction.atomic
def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    """Change a customer's details; an emptied currency falls back to the reseller's.

    The row is locked, so a currency change and a new subscription cannot cross. `status`
    only through suspend / reinstate (an unchanged one is accepted)."""
    _refuse_status_change(customer, fields)
    if "currency" in fields:
        fields["currency"] = customer_currency_default(
            reseller=customer.reseller, currency=fields["currency"]
        )
        locked = Customer.objects.select_for_update().row_of(customer).get()
        customer_check_currency_change(customer=locked, currency=fields["currency"])
    if fields.get("topup_bytes"):
        customer_check_topup_bytes(customer=customer, topup_bytes=fields["topup_bytes"])
    return _update_validated(customer, CUSTOMER_UPDATABLE_FIELDS, fields)


def customer_check_topup_bytes(*, customer: Customer, topup_bytes: int) -> None:
    """Refuse (`topup_not_whole_mb`) a top-up chunk that is not a whole number of the MB of
    every IPFoxy upstream account the customer has open sub-accounts on (allocations are sent
    in the upstream's MB: 1,048,576 or 1,000,000 bytes). Sub-accounts added later are checked
    by the policy run, which skips them with the same code."""
    sizes = sorted(
        set(
            SubAccount.objects.filter(customer=customer, upstream_account__provider=Provider.IPFOXY)
            .exclude(status=SubAccount.Status.CLOSED)
            .values_list("upstream_account__mb_bytes", flat=True)
        )
    )
    wrong = [size for size in sizes if topup_bytes % size]
    if wrong:
        message = (
            f"topup_bytes must be a whole number of the upstream MB ({wrong[0]} bytes): "
            f"{topup_bytes // wrong[0]} MB is {topup_bytes // wrong[0] * wrong[0]} bytes."
        )
        raise ApplicationError(
            "topup_not_whole_mb", message, extra={"fields": {"topup_bytes": [message]}}
        )


def upstream_account_check_base_url_change(
    *, upstream_account: UpstreamAccount, base_url: str, credentials: Mapping[str, str] | None
) -> None:
    """Moving an IPFoxy account to another base URL needs its api-id and api-token typed in
    again (`credentials`: what was entered with the move, never the stored ones): whoever can
    change the URL must already know the secrets sent there (a stolen session or key alone
    cannot redirect them). BytesFlows accounts hold no credentials of their own; their base
    URL is bounded by the host allowlist like every other."""
    if upstream_account.pk is None or upstream_account.provider != Provider.IPFOXY:
        return
    stored = UpstreamAccount.objects.row_of(upstream_account).values_list("base_url", flat=True)
    if (base_url or "").rstrip("/") == (stored.first() or "").rstrip("/"):
        return
    given = credentials or {}
    if not (given.get("api_id") and given.get("api_token")):
        raise ValidationError(
            {"credentials": "Changing base_url requires entering the api_id and api_token again."}
        )


def upstream_account_check(
    *,
    upstream_account: UpstreamAccount,
    fields: Mapping[str, Any],
    keep_stored_credentials: bool = False,
) -> dict[str, Any]:
    """The rules of a change beyond the model's, without saving it (the admin form shows
    them as field errors; `upstream_account_update` applies them again): a new `base_url`
    of an IPFoxy account comes with its credentials typed in again, and the credentials are
    the provider's (`credentials_resolve`; `keep_stored_credentials`: a form's write-only
    inputs). Returns `fields` with the credentials to store (none when they stay)."""
    fields = dict(fields)
    given = fields.pop("credentials", None)
    if "base_url" in fields:
        entered = credentials_entered(given) if keep_stored_credentials else given
        upstream_account_check_base_url_change(
            upstream_account=upstream_account, base_url=fields["base_url"], credentials=entered
        )
    credentials = credentials_resolve(
        kind=UPSTREAM,
        provider=upstream_account.provider,
        stored=upstream_account.credentials if upstream_account.pk else {},
        given=given,
        keep_stored=keep_stored_credentials,
    )
    if credentials is not None:
        fields["credentials"] = credentials
    return fields


@transaction.atomic
def upstream_account_update(
    *, upstream_account: UpstreamAccount, keep_stored_credentials: bool = False, **fields: Any
) -> UpstreamAccount:
    """Change an upstream connection; `credentials`, when given, replace the stored ones
    (with `keep_stored_credentials`, only the keys typed in: the admin's write-only inputs).

    A new `base_url` must be on the provider's host allowlist and, for IPFoxy, come with the
    credentials (see `upstream_account_check`)."""
    fields = upstream_account_check(
        upstream_account=upstream_account,
        fields=fields,
        keep_stored_credentials=keep_stored_credentials,
    )
    return _update_validated(upstream_account, UPSTREAM_ACCOUNT_UPDATABLE_FIELDS, fields)


@transaction.atomic
def sub_account_update(
    *, sub_account: SubAccount, keep_stored_credentials: bool = False, **fields: Any
) -> SubAccount:
    """Change a sub-account's label, status (`active` or `suspended`) or token; its customer
    and dates change by moving or closing it (`accounts.sub_accounts`), never here, and a
    closed one keeps its status (`sub_account_closed`). A token is checked like the API's
    (`credentials_resolve`; `keep_stored_credentials`: the admin's write-only input, left
    empty to keep the stored one)."""
    _refuse_closing_fields(fields)
    if fields.get("status", sub_account.status) != sub_account.status:
        sub_account_check_open(sub_account=sub_account)
    if "credentials" in fields:
        credentials = credentials_resolve(
            kind=SUB_ACCOUNT,
            provider=sub_account.upstream_account.provider,
            stored=sub_account.credentials,
            given=fields.pop("credentials"),
            keep_stored=keep_stored_credentials,
        )
        if credentials is not None:
            fields["credentials"] = credentials
    return _update_validated(sub_account, SUB_ACCOUNT_UPDATABLE_FIELDS, fields)


# --- reseller settings ----------------------------------------------------------------------

#: What a reseller's staff change about their reseller (API and admin alike; the API does
#: The logo has its own services below.
RESELLER_SETTINGS_FIELDS = frozenset(
    {
        "address",
        "tax_id",
        "payment_instructions",
        "sender_email",
        "grace_period_days",
        "payment_terms_days",
        "reminder_offsets",
        "suspend_after_overdue_days",
    }
)
#: What only the platform operator (a superuser) changes: the name and slug identify the
#: reseller (the name is the display name of its emails), the currency is what new customers
#: and plans default to and what upstream costs are counted in (a change leaves the currency
#: stored on each existing customer as it is), the timezone cuts billing periods (a change
#: would move existing periods), the prefix numbers issued invoices (unique, so one
#: reseller's numbers never pass for another's), and the verified sender domain lets its
#: `sender_email` be the From of its emails (`accounts.email_identity`).
RESELLER_PLATFORM_FIELDS = frozenset(
    {"name", "slug", "currency", "timezone", "invoice_prefix", "verified_sender_domain"}
)
PLATFORM_FIELD_MESSAGE = "Only the platform operator can change this."
#: Largest accepted logo file; the invoice PDF draws it in a 40 mm box.
LOGO_MAX_BYTES = 1_048_576
LOGO_MAX_PIXELS = 4000
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg"}
GRACE_DAYS_MAX = 60


def reseller_grace_days_validate(days: int) -> int:
    """Drafts wait this long for late usage; beyond two months they would overlap the next
    period's run."""
    if days > GRACE_DAYS_MAX:
        raise ValidationError({"grace_period_days": f"At most {GRACE_DAYS_MAX} days."})
    return days


def reseller_invoice_prefix_check_unique(*, reseller: Reseller, prefix: str) -> None:
    """Refuse a prefix another reseller has: its invoice and credit note numbers would read
    like theirs. (Not a database constraint: installations from before this rule may hold
    resellers sharing the default `INV`; they keep it until the operator changes one.)"""
    taken = Reseller.objects.filter(invoice_prefix=prefix)
    if reseller.pk is not None:
        taken = taken.exclude(pk=reseller.pk)
    if taken.exists():
        raise ValidationError(
            {"invoice_prefix": f"Another reseller uses the prefix {prefix}; choose another."}
        )


def reseller_settings_check(
    *, reseller: Reseller, fields: Mapping[str, Any], platform_admin: bool = False
) -> None:
    """The rules of a settings change, without saving it (the admin form shows them as field
    errors; `reseller_settings_update` applies them again). A platform-owned field given
    with a value other than the stored one is refused unless `platform_admin`; the stored
    value sent back is not a change and passes."""
    allowed = RESELLER_SETTINGS_FIELDS | RESELLER_PLATFORM_FIELDS
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    platform = sorted(set(fields) & RESELLER_PLATFORM_FIELDS)
    stored = Reseller.objects.filter(pk=reseller.pk).values(*platform).first() or {}
    changed = {name for name in platform if fields[name] != stored.get(name)}
    if changed and not platform_admin:
        raise ValidationError({name: PLATFORM_FIELD_MESSAGE for name in sorted(changed)})
    if "invoice_prefix" in changed:
        reseller_invoice_prefix_check_unique(reseller=reseller, prefix=fields["invoice_prefix"])
    if fields.get("grace_period_days") is not None:
        reseller_grace_days_validate(fields["grace_period_days"])


@transaction.atomic
def reseller_settings_update(
    *, reseller: Reseller, platform_admin: bool = False, **fields: Any
) -> Reseller:
    """Change a reseller's settings: its staff (API, admin) the `RESELLER_SETTINGS_FIELDS`,
    the platform operator (`platform_admin`: a superuser) also the
    `RESELLER_PLATFORM_FIELDS` (see `reseller_settings_check`). The model's validators
    apply (400 naming the field)."""
    reseller_settings_check(reseller=reseller, fields=fields, platform_admin=platform_admin)
    return _update_validated(reseller, RESELLER_SETTINGS_FIELDS | RESELLER_PLATFORM_FIELDS, fields)


def reseller_logo_validate(upload) -> str:
    """Check an uploaded logo is a PNG or JPEG (what the PDF renderer draws) within the size
    limits; returns the file extension to store it under. The one check of the API and the
    admin (`ResellerForm`).

    Nothing is decoded before the header's declared size is known to be small: Pillow's
    `open` reads only the header, refusing a declared size past its decompression-bomb limit
    (`DecompressionBombError`; its warning, past half that, counts as a refusal too); the
    format and the declared width and height are checked next, and only then is the file
    verified. A PNG claiming 30000x30000 pixels is a 400 naming `logo`, never a 500."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    if upload.size > LOGO_MAX_BYTES:
        raise ValidationError({"logo": f"The logo is larger than {LOGO_MAX_BYTES} bytes."})
    limit = f"at most {LOGO_MAX_PIXELS} pixels a side."
    try:
        upload.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                image_format, (width, height) = image.format, image.size
                if image_format not in LOGO_FORMATS:
                    raise ValidationError({"logo": f"Use a PNG or JPEG image, not {image_format}."})
                if max(width, height) > LOGO_MAX_PIXELS:
                    raise ValidationError({"logo": f"The logo is {width}x{height}; {limit}"})
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationError({"logo": f"The image is too large; {limit}"}) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError({"logo": "The file is not a readable image."}) from exc
    finally:
        upload.seek(0)
    return LOGO_FORMATS[image_format]


def reseller_logo_set(*, reseller: Reseller, upload) -> Reseller:
    """Replace the reseller's logo (validated). Old files are kept: invoice snapshots name
    the logo file they were frozen with, so a re-rendered PDF still finds it."""
    from django.core.files.base import ContentFile

    extension = reseller_logo_validate(upload)
    reseller.logo.save(f"{reseller.slug}.{extension}", ContentFile(upload.read()), save=False)
    reseller.save(update_fields=["logo"])
    return reseller


def reseller_logo_delete(*, reseller: Reseller) -> Reseller:
    """Stop using a logo on new documents (the file stays for frozen snapshots)."""
    if reseller.logo:
        reseller.logo = ""
        reseller.save(update_fields=["logo"])
    return reseller


# --- staff logins ---------------------------------------------------------------------------

#: Random bytes of a generated one-time password: 15 give 20 URL-safe characters, 120 bits.
STAFF_PASSWORD_BYTES = 15


@dataclass(frozen=True)
class StaffUserCreated:
    user: User
    #: The generated password, to show this once (never stored in clear); None when the
    #: caller chose the password.
    password: str | None


def staff_user_check(*, reseller: Reseller | None, is_staff: bool, is_superuser: bool) -> None:
    """A login linked to a reseller is that reseller's staff: `is_staff` (or the admin login
    would turn it away without a word) and never a superuser (a superuser sees every
    reseller). To stop such a login, deactivate it (`is_active`)."""
    if reseller is None:
        return
    errors = {}
    if not is_staff:
        errors["is_staff"] = (
            "A reseller's login is always staff (the admin would refuse it otherwise); "
            "to stop it, untick Active instead."
        )
    if is_superuser:
        errors["is_superuser"] = "A reseller's login cannot be a superuser."
    if errors:
        raise ValidationError(errors)


def staff_user_check_new(*, username: str, email: str) -> None:
    """What a new staff login needs beyond the model's field rules: a username no login has
    in any letter case, and an email address."""
    errors = {}
    if username and User.objects.filter(username__iexact=username).exists():
        errors["username"] = f"A login named {username!r} already exists."
    if not email:
        errors["email"] = "A staff login needs an email address."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def staff_user_create(
    *, reseller: Reseller, username: str, email: str, password: str | None = None
) -> StaffUserCreated:
    """A staff login for `reseller` (the `create_staff_user` command and the superuser's
    admin): `is_staff`, never a superuser, able to log in to the admin at once, where it lands
    on its reseller's dashboard. Without `password` a random one is generated and returned
    once; a given one must pass the password validators. A username taken in any letter case
    (`username`) and an invalid email are refused (`ValidationError` naming the field)."""
    username, email = username.strip(), email.strip()
    staff_user_check_new(username=username, email=email)
    user = User(username=username, email=email, reseller=reseller, is_staff=True)
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(STAFF_PASSWORD_BYTES)
    else:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    return StaffUserCreated(user=_save_validated(user), password=generated)
