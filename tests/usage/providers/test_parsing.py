"""`usage.providers.parsing`: the fast MB-text conversion accepts exactly the plain decimal
text the strict path's expression accepts, and converts it to the same bytes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from usage.providers import parsing

PLAIN = ["0", "7", "0.5", "1453.16", "007.10", "1" * 24, "1." + "5" * 12, "0.000000476837"]
NOT_PLAIN = [
    "", ".", "1.", ".5", "1.2.3", " 1", "1 ", "1\n", "+1", "-1", "1e3", "1_000", "0x10",
    "1" * 25, "1." + "5" * 13, "１２", "١٢", "²", "1.²", "1.٥", "NaN", "inf",
]  # fmt: skip


@pytest.mark.parametrize("value", PLAIN + NOT_PLAIN)
def test_fast_conversion_takes_exactly_what_the_decimal_expression_matches(value):
    fast = parsing.decimal_text_to_bytes(value, 1_048_576)
    if parsing._DECIMAL_TEXT.fullmatch(value):
        assert fast == parsing.to_bytes(Decimal(value), numerator=1_048_576)
    else:
        assert fast is None


def test_the_plain_cases_are_plain_and_the_others_are_not():
    assert all(parsing._DECIMAL_TEXT.fullmatch(value) for value in PLAIN)
    assert not any(parsing._DECIMAL_TEXT.fullmatch(value) for value in NOT_PLAIN)
