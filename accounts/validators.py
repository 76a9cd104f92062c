"""Field validators shared by the accounts models and the API."""

from functools import cache
from zoneinfo import available_timezones

from babel import Locale
from babel.numbers import list_currencies
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


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
    if value not in _currencies():
        raise ValidationError(
            "%(value)s is not an ISO 4217 currency code.", params={"value": value}
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
