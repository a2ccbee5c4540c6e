"""Exact-decimal fields for the ledger's amounts (ε, δ), at the columns' precision."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from core.amounts import amount_text
from governance.models import DELTA_DIGITS, EPSILON_DIGITS


class ExactDecimalField(serializers.DecimalField):
    """A decimal read from a JSON number or string and written as its exact, shortest string.

    ``0.00010000000000000000`` (as stored) is written ``"0.0001"``; no float is ever involved.
    """

    def quantize(self, value: Decimal) -> Decimal:
        # The digits were already checked against the column's precision; keep the value as the
        # client wrote it so messages echo "6", not "6.000000000000".
        return value

    def to_representation(self, value: Any) -> str:
        return amount_text(Decimal(value))


def epsilon_field(**kwargs: Any) -> ExactDecimalField:
    return ExactDecimalField(**EPSILON_DIGITS, **kwargs)


def delta_field(**kwargs: Any) -> ExactDecimalField:
    return ExactDecimalField(**DELTA_DIGITS, **kwargs)
