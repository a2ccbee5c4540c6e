"""What an engine's ``check()`` refuses before anything is spent: ``validate_frame``'s refusals, named once.

An engine that validates a table where it lives (SQL, Spark) asks :func:`refuse_structure` about
the schema, then, per column, :func:`value_refusals` for the row-level refusals that apply; it
renders each :class:`Refusal`'s ``kind`` as a predicate in its own language, counts the rows
matching it in one pass, and raises ``refusal.error(refusal.message)`` for the first with a
count. The messages are those ``synth_engine.generators.domain.validate_frame`` gives a frame
(every refusal is a :class:`~synth_engine.generators.base.SchemaMismatchError` here).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import ColumnSpec
from synth_engine.generators.domain import is_nullable, refuse_structure

__all__ = ["Refusal", "refuse_structure", "value_refusals"]


@dataclass(frozen=True)
class Refusal:
    """One row-level refusal: ``kind`` is ``missing`` (a missing value in a column without a
    missing code), ``infinite`` (±inf), ``fraction`` (a fraction in an integer column), ``off_grid``
    (a float column's value off its declared step), ``weekend`` (a Saturday or Sunday, UTC, in a
    column on the weekdays calendar) or ``category`` (a value outside the declared categories)."""

    kind: str
    spec: ColumnSpec
    message: str


def value_refusals(spec: ColumnSpec, *, fractional: bool) -> list[Refusal]:
    """The row-level refusals of one column; ``fractional``: the stored column can hold fractions
    and ±inf (a floating-point type)."""
    refusals = []
    if not is_nullable(spec):
        if spec.nullable is False:
            message = f"column {spec.name!r} is declared nullable: false but has missing values"
        else:
            message = (
                f"{spec.role} column {spec.name!r} has missing values: a {spec.role} column is not nullable unless "
                'the schema declares "nullable": true (then missing is one of its released values)'
            )
        refusals.append(Refusal("missing", spec, message))
    if spec.is_numeric and spec.type != "datetime" and fractional:
        refusals.append(Refusal("infinite", spec, f"column {spec.name!r} holds ±inf: replace it or mark it missing"))
        if spec.type == "integer":
            refusals.append(Refusal("fraction", spec, f"column {spec.name!r} is declared integer but has fractions"))
    if spec.type == "float" and spec.step is not None:
        refusals.append(
            Refusal(
                "off_grid",
                spec,
                f"column {spec.name!r} is declared on a grid of step {spec.step:g} but holds values off it",
            )
        )
    if spec.type == "datetime" and spec.calendar == "weekdays":
        message = (
            f"column {spec.name!r} is declared on the weekdays calendar but holds values on a Saturday or Sunday (UTC)"
        )
        refusals.append(Refusal("weekend", spec, message))
    if spec.type == "categorical" and spec.categories is not None:
        refusals.append(
            Refusal(
                "category",
                spec,
                f"column {spec.name!r} has values outside its declared categories: add them to the schema",
            )
        )
    return refusals
