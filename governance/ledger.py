"""The ledger's arithmetic, in one place: a dataset's balance is a fold over its entries.

A ``reserve`` holds an amount; a ``spend`` uses it and a ``release`` gives it back, each
drawing down the reservation it came from; an ``estimate`` (a source version's DP row count)
is spent outright, with no request and no reservation. remaining = cap − spent − reserved. Amounts are
exact Decimals. The selectors ``budget_balance``/``budget_balances`` fold the stored rows;
the compliance report folds them one at a time to show the balance after each entry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from core.amounts import amount_text
from governance.models import Dataset, EntryKind

ZERO = Decimal(0)


@dataclass(frozen=True)
class BudgetBalance:
    epsilon_cap: Decimal
    delta_cap: Decimal
    epsilon_spent: Decimal = ZERO
    delta_spent: Decimal = ZERO
    epsilon_reserved: Decimal = ZERO
    delta_reserved: Decimal = ZERO

    @classmethod
    def opening(cls, dataset: Dataset) -> BudgetBalance:
        """The balance before any entry: the caps, nothing spent or reserved."""
        return cls(epsilon_cap=dataset.epsilon_cap, delta_cap=dataset.delta_cap)

    @property
    def epsilon_remaining(self) -> Decimal:
        return self.epsilon_cap - self.epsilon_spent - self.epsilon_reserved

    @property
    def delta_remaining(self) -> Decimal:
        return self.delta_cap - self.delta_spent - self.delta_reserved

    def plus(self, kind: str, epsilon: Decimal, delta: Decimal) -> BudgetBalance:
        """The balance after one more ledger entry of ``kind``."""
        if kind == EntryKind.RESERVE:
            return replace(
                self, epsilon_reserved=self.epsilon_reserved + epsilon, delta_reserved=self.delta_reserved + delta
            )
        if kind == EntryKind.SPEND:
            return replace(
                self,
                epsilon_spent=self.epsilon_spent + epsilon,
                delta_spent=self.delta_spent + delta,
                epsilon_reserved=self.epsilon_reserved - epsilon,
                delta_reserved=self.delta_reserved - delta,
            )
        if kind == EntryKind.ESTIMATE:  # spent outright: a row estimate reserves nothing first
            return replace(self, epsilon_spent=self.epsilon_spent + epsilon, delta_spent=self.delta_spent + delta)
        if kind == EntryKind.RELEASE:
            return replace(
                self, epsilon_reserved=self.epsilon_reserved - epsilon, delta_reserved=self.delta_reserved - delta
            )
        raise ValueError(f"unknown ledger entry kind {kind!r}")

    def amounts(self, measure: str) -> dict[str, Decimal]:
        """``cap``, ``spent``, ``reserved`` and ``remaining`` of ``epsilon`` or ``delta``."""
        return {part: getattr(self, f"{measure}_{part}") for part in ("cap", "spent", "reserved", "remaining")}

    def figures(self) -> dict[str, str]:
        """Spent, reserved and remaining of ε and δ as amount text, keyed ``epsilon_spent`` etc."""
        return {
            f"{measure}_{part}": amount_text(value)
            for measure in ("epsilon", "delta")
            for part, value in self.amounts(measure).items()
            if part != "cap"
        }
