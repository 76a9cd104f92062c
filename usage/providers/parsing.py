"""Strict little parsers shared by the connectors: every doubt becomes a BadResponseError.

Upstream bodies are decoded with `parse_float=Decimal`, so numbers arrive as `int` or
`Decimal`, never float. These helpers accept exactly the shapes the providers publish and
reject the rest with a message naming the field, so a hostile or broken answer fails one
sub-account's sync cleanly instead of storing wrong usage.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from usage.providers.base import BadResponseError

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
_DECIMAL_TEXT = re.compile(r"[0-9]{1,24}(\.[0-9]{1,12})?")
_INT_TEXT = re.compile(r"[0-9]{1,20}")
_CODE_TEXT = re.compile(r"-?[0-9]{1,9}")
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")
# Enough digits that no product of a 24-digit amount and a byte multiplier is ever rounded.
_EXACT = Context(prec=80)


def bad(message: str, context: dict[str, Any]) -> BadResponseError:
    return BadResponseError(message, context=context)


def mapping(value: Any, name: str, context: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"`{name}` is missing or not an object", context)
    return value


def sequence(value: Any, name: str, context: dict[str, Any]) -> list[Any]:
    if not isinstance(value, list):
        raise bad(f"`{name}` is missing or not a list", context)
    return value


def text(value: Any, name: str, context: dict[str, Any], *, allow_int: bool = False) -> str:
    """A non-empty string (or, when allowed, an int shown as text: ids are sometimes ints)."""
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise bad(f"`{name}` is missing or not a string", context)
    return value


def amount(value: Any, name: str, context: dict[str, Any]) -> tuple[Decimal, str]:
    """A non-negative decimal amount sent as text ("1453.16") or a JSON number.

    Returns the Decimal and the raw text kept next to the converted bytes.
    """
    if isinstance(value, bool) or value is None:
        raise bad(f"`{name}` is missing or not a number", context)
    if isinstance(value, int | Decimal):
        raw = str(value)
        if isinstance(value, Decimal) and not value.is_finite():
            raise bad(f"`{name}` is not a finite number", context)
        if value < 0:
            raise bad(f"`{name}` is negative ({raw})", context)
        if len(raw) > 40 or (value and Decimal(value).adjusted() > 24):
            raise bad(f"`{name}` is out of range", context)
        return Decimal(value), raw
    if not isinstance(value, str):
        raise bad(f"`{name}` is not a number", context)
    raw = value.strip()
    if raw.startswith("-"):
        raise bad(f"`{name}` is negative ({raw[:40]})", context)
    if not _DECIMAL_TEXT.fullmatch(raw):
        raise bad(f"`{name}` is not a decimal number ({raw[:40]!r})", context)
    return Decimal(raw), value


def to_bytes(value: Decimal, *, numerator: int, denominator: int = 1) -> int:
    """`value * numerator / denominator` rounded half up to a whole byte, exactly."""
    try:
        exact = _EXACT.divide(_EXACT.multiply(value, Decimal(numerator)), Decimal(denominator))
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_EXACT))
    except ArithmeticError:  # pragma: no cover - amounts are range-checked before
        raise BadResponseError("amount out of range") from None


def decimal_text_to_bytes(value: str, numerator: int) -> int | None:
    """`to_bytes(amount(value), numerator=numerator)` for plain decimal text ("1453.16"),
    by integer arithmetic; None for anything `amount` might treat otherwise (spaces, signs,
    too many digits): callers then take the strict path.

    Plain text is what `_DECIMAL_TEXT` matches, checked by string methods (a third cheaper
    than the expression, and this runs for every hour of every sync): ASCII only, so
    `isdigit` means 0-9; 1 to 24 digits, then optionally a point and 1 to 12 digits."""
    whole, point, fraction = value.partition(".")
    if not (
        value.isascii()
        and whole.isdigit()
        and len(whole) <= 24
        and (not point or (fraction.isdigit() and len(fraction) <= 12))
    ):
        return None
    scale = _SCALES[len(fraction)]
    quotient, rest = divmod(int(whole + fraction) * numerator, scale)
    return quotient + (1 if 2 * rest >= scale else 0)  # half up (never negative)


_SCALES = tuple(10**digits for digits in range(13))


def count(value: Any, name: str, context: dict[str, Any]) -> int:
    """A row count: IPFoxy sends it as a string ("8"); a JSON integer is accepted too."""
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise bad(f"`{name}` is missing or not a non-negative integer", context)


def business_code(value: Any, context: dict[str, Any]) -> int:
    """The body's `code`, an integer or integer text; anything else is a bad response."""
    if isinstance(value, str) and _CODE_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad("body has no integer `code`", context)
    return value


def strict_int(value: Any, name: str, context: dict[str, Any]) -> int:
    """A non-negative integer of bytes: ints, integral JSON numbers ("1024.0") and digit
    strings pass; bools, fractions, negatives and other text do not."""
    if isinstance(value, bool) or value is None:
        raise bad(f"`{name}` is missing or not an integer", context)
    if isinstance(value, int):
        result = value
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value() or value.adjusted() > 30:
            raise bad(f"`{name}` is not a whole number ({value})", context)
        result = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        result = int(value.strip())
    else:
        raise bad(f"`{name}` is not an integer", context)
    if result < 0:
        raise bad(f"`{name}` is negative ({result})", context)
    return result


def utc_offset(value: Any, name: str, context: dict[str, Any]) -> dt.timezone:
    """A fixed offset written "+08:00" (any ±HH:MM, up to ±14:00)."""
    match = _OFFSET.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise bad(f"`{name}` is missing or not a ±HH:MM offset", context)
    sign, hours, minutes = match.groups()
    delta = dt.timedelta(hours=int(hours), minutes=int(minutes))
    if delta > dt.timedelta(hours=14) or int(minutes) >= 60:
        raise bad(f"`{name}` is out of range ({value})", context)
    return dt.timezone(-delta if sign == "-" else delta)


def zone(name: str) -> dt.tzinfo:
    """An IANA zone name, "UTC", or a ±HH:MM offset (configuration, so ValueError)."""
    if _OFFSET.fullmatch(name):
        return utc_offset(name, "record_timezone", {})
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def local_time(value: Any, name: str, tz: dt.tzinfo, context: dict[str, Any]) -> dt.datetime:
    """A "YYYY-MM-DD HH:MM:SS" wall time in `tz`, returned aware in UTC."""
    if not isinstance(value, str):
        raise bad(f"`{name}` is missing or not a date string", context)
    try:
        naive = dt.datetime.strptime(value.strip(), LOCAL_FORMAT)  # noqa: DTZ007 - tz next
    except ValueError:
        raise bad(f"`{name}` is not a YYYY-MM-DD HH:MM:SS date ({value[:40]!r})", context) from None
    try:
        return naive.replace(tzinfo=tz).astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise bad(f"`{name}` is out of range ({value[:40]!r})", context) from None


def optional_time(
    value: Any, name: str, tz: dt.tzinfo, context: dict[str, Any]
) -> dt.datetime | None:
    """A unix timestamp (int or digit string) or a local "YYYY-MM-DD HH:MM:SS" in `tz`.

    Null, "" and 0 mean "not set" (e.g. a sub-account that never expires).
    """
    if value is None or value == "" or value == 0 or value == "0":
        return None
    if (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and _INT_TEXT.fullmatch(value.strip())
    ):
        seconds = int(value)
        if seconds >= 10**11:  # milliseconds
            seconds //= 1000
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise bad(f"`{name}` is out of range ({value})", context) from None
    return local_time(value, name, tz, context)
