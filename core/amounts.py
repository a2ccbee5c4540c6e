"""How an amount of privacy budget (ε, δ) is written, everywhere a person or a parser reads one.

The ledger keeps exact ``NUMERIC`` amounts with 12 (ε) or 20 (δ) decimal places, so a stored
``9`` comes back as ``9.000000000000`` and ``1e-6`` as ``0.00000100000000000000``. People write
``9`` and ``0.000001``: this is the one function that turns an amount into that text, for the
CLI (tables and ``--json``), the API, the dashboard, error messages and the PDFs. It is exact
(no float, no rounding, no exponent), so the text also reads back as the same Decimal.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationError

# The ledger's precision: ε to 12 and δ to 20 decimal places (the NUMERIC columns use these).
EPSILON_PLACES = 12
DELTA_PLACES = 20
NONE_TEXT = "—"
INFINITY_TEXT = "∞"


def amount_text(value: Decimal | int | float | str | None, *, places: int | None = None) -> str:
    """``9.000000000000`` → ``9``; ``0.00000100000000000000`` → ``0.000001``; ``0E-12`` → ``0``.

    ``None`` is an em dash and an infinite ε (a non-private generator) is ``∞``. A float is
    read from its shortest repr (``0.1`` stays ``0.1``); a string must be a decimal number.
    ``places`` rounds up to that many decimal places first (as the ledger stores an
    accountant's float), so a figure is never shown below what was spent.
    """
    if value is None or value == "":
        return NONE_TEXT
    if isinstance(value, bool):
        raise TypeError("an amount is a number, not a bool")
    try:
        number = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation as error:
        raise ValueError(f"{value!r} is not an amount") from error
    if number.is_nan():
        raise ValueError("an amount cannot be NaN")
    if number.is_infinite():
        return INFINITY_TEXT if number > 0 else "−" + INFINITY_TEXT
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)
    if number.is_zero():
        return "0"
    return format(number.normalize(), "f")


def parse_decimal(
    value: Any,
    *,
    field: str,
    minimum_exclusive: Decimal | None = None,
    maximum_exclusive: Decimal | None = None,
    minimum: Decimal | None = None,
) -> Decimal:
    """An exact Decimal from user input, with the field named in every error."""
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as error:
        raise ValidationError(f"{field} must be a number; got {value!r}.", extra={"field": field}) from error
    if not number.is_finite():
        raise ValidationError(f"{field} must be a finite number; got {value!r}.", extra={"field": field})
    if minimum_exclusive is not None and number <= minimum_exclusive:
        raise ValidationError(f"{field} must be greater than {minimum_exclusive}; got {value}.", extra={"field": field})
    if minimum is not None and number < minimum:
        raise ValidationError(f"{field} must be at least {minimum}; got {value}.", extra={"field": field})
    if maximum_exclusive is not None and number >= maximum_exclusive:
        raise ValidationError(f"{field} must be less than {maximum_exclusive}; got {value}.", extra={"field": field})
    return number
