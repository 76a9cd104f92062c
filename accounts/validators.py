"""Field validators shared by the accounts models and the API."""

from functools import cache
from zoneinfo import available_timezones

from babel.numbers import list_currencies
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_currency(value: str) -> None:
    if value not in _currencies():
        raise ValidationError(
            "%(value)s is not an ISO 4217 currency code.", params={"value": value}
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
