"""Field validators shared by the accounts models and the API."""

import datetime as dt
from functools import cache
from zoneinfo import available_timezones

from babel import Locale
from babel.numbers import get_territory_currencies
from django.core.exceptions import ValidationError
from django.core.validators import DomainNameValidator, validate_email

#: Further billing addresses a customer may have (`Customer.cc_emails`): every invoice, credit
#: note and alert goes to them in `Cc`, so the list is kept short.
MAX_CC_EMAILS = 5


@cache
def _currencies() -> frozenset[str]:
    """ISO 4217 currencies in circulation: legal tender of some territory today, by CLDR's
    currency history as Babel ships it (`get_territory_currencies(..., tender=True)`; about
    155 codes). Left out: withdrawn currencies (DEM, HRK), funds and non-tender units (BOV,
    CLF, USN, XDR), precious metals (XAU, XAG), and the testing and "no currency" codes
    (XTS, XXX). Babel's `list_currencies()` has all ~300 CLDR codes, those included; its
    `is_currency()` says only whether a code is known. Read once per process."""
    today = dt.datetime.now(dt.UTC).date()
    return frozenset(
        code
        for territory in Locale("en").territories
        for code in get_territory_currencies(territory, start_date=today, tender=True)
    )


#: Two-letter region codes CLDR knows that ISO 3166-1 does not assign to a country
#: (exceptionally reserved, user-assigned, or groupings such as EU and UN).
_NOT_ISO_3166 = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"}
)


@cache
def _countries() -> frozenset[str]:
    codes = Locale("en").territories
    return frozenset(c for c in codes if len(c) == 2 and c.isalpha()) - _NOT_ISO_3166


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_currency(value: str) -> None:
    """An ISO 4217 currency in circulation (`_currencies`): bills are paid in it."""
    if value not in _currencies():
        raise ValidationError(
            "%(value)s is not an ISO 4217 currency code in circulation (e.g. USD, EUR).",
            params={"value": value},
        )


def validate_country(value: str) -> None:
    if value and value not in _countries():
        raise ValidationError(
            "%(value)s is not an ISO 3166-1 alpha-2 country code (e.g. DE, CN).",
            params={"value": value},
        )


def validate_timezone(value: str) -> None:
    if value not in _timezones():
        raise ValidationError(
            "%(value)s is not an IANA timezone name (e.g. Asia/Shanghai).", params={"value": value}
        )


def validate_email_list(value: str) -> None:
    for email in (e.strip() for e in value.split(",")):
        if email:
            validate_email(email)


def validate_cc_emails(value: str) -> None:
    """A comma-separated list of at most `MAX_CC_EMAILS` email addresses."""
    validate_email_list(value)
    count = len([e for e in value.split(",") if e.strip()])
    if count > MAX_CC_EMAILS:
        raise ValidationError(
            "At most %(max)d further billing emails (%(count)d given).",
            code="too_many_cc_emails",
            params={"max": MAX_CC_EMAILS, "count": count},
        )


_domain_name = DomainNameValidator()


def validate_sender_domain(value: str) -> None:
    """A domain name in lower case, without a trailing dot (`acme.example`)."""
    _domain_name(value)
    if value != value.lower() or value.endswith("."):
        raise ValidationError("Write the domain in lower case, without a trailing dot.")


#: At most this many reminders, each between 30 days before and 365 after the due date.
MAX_REMINDERS = 8
REMINDER_RANGE = (-30, 365)


def validate_reminder_offsets(value) -> None:
    """A list of distinct whole days relative to the due date, e.g. [-3, 0, 7, 14]."""
    low, high = REMINDER_RANGE
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ValidationError("Give a list of whole days, e.g. [-3, 0, 7, 14].")
    if len(value) > MAX_REMINDERS:
        raise ValidationError(f"At most {MAX_REMINDERS} reminders.")
    if len(set(value)) != len(value):
        raise ValidationError("Each day at most once.")
    outside = [v for v in value if not low <= v <= high]
    if outside:
        raise ValidationError(f"Days must be between {low} and {high}; not {outside[0]}.")
