"""One way to write an amount of privacy budget: exact, shortest, no exponent, no float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.amounts import amount_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("9.000000000000"), "9"),
        (Decimal("0.00000100000000000000"), "0.000001"),
        (Decimal("1.0000000000000000E-7"), "0.0000001"),
        (Decimal("0E-12"), "0"),
        (Decimal("1E+1"), "10"),
        (Decimal("123.450000000000"), "123.45"),
        (3, "3"),
        (0.1, "0.1"),
        (1e-05, "0.00001"),
        ("2.50", "2.5"),
        (float("inf"), "∞"),
        (None, "—"),
    ],
)
def test_an_amount_is_written_as_people_write_it(value, text):
    assert amount_text(value) == text


def test_the_text_reads_back_as_the_same_decimal():
    for stored in (Decimal("0.333333333333"), Decimal("0.00001000000000000000"), Decimal("12.5")):
        assert Decimal(amount_text(stored)) == stored


def test_places_round_an_accountants_float_up_never_down():
    assert amount_text(0.99998765432101, places=12) == "0.999987654322"
    assert amount_text(Decimal("0.1"), places=12) == "0.1"


@pytest.mark.parametrize("value", [True, "many", float("nan")])
def test_what_is_not_an_amount_is_refused(value):
    with pytest.raises((TypeError, ValueError)):
        amount_text(value)
