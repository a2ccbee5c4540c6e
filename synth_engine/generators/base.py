"""The one small interface every Synthgate generator implements.

Pure numeric code: no Django. A generator follows the estimator grammar: the
constructor only stores hyperparameters, ``fit`` validates, trains and returns
``self`` (learned state ends in ``_``), ``sample`` returns a DataFrame with the
source's columns and dtypes, and randomness enters only through ``random_state``.
Models are saved as JSON parameters plus ``.npz`` arrays (or torch tensors) --
never a pickle.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd


class GeneratorError(ValueError):
    """Base class for errors a user can act on (bad data, bad parameters, too little budget)."""


class InsufficientBudgetError(GeneratorError):
    """The privacy target is too small for this generator to produce anything useful."""


class SchemaMismatchError(GeneratorError):
    """The frame and the schema disagree (missing columns, wrong types)."""


@dataclass(frozen=True)
class PrivacySpent:
    """What a fit actually spent, as reported by the accountant.

    ``epsilon`` is ``math.inf`` for non-private generators. ``details`` holds the
    accountant's inputs (noise multiplier or sigma, sample rate, steps, clipping
    bound, composition) so the ledger can store them and anyone can recompute.
    """

    epsilon: float
    delta: float
    accountant: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_private(self) -> bool:
        return math.isfinite(self.epsilon)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["epsilon"] = None if not self.is_private else self.epsilon
        return data


class Generator(ABC):
    """Base class: fit on a frame with a schema under (epsilon, delta), then sample rows.

    ``schema`` is the plain dict stored with a dataset version::

        {"columns": [{"name": "age", "type": "integer", "role": "quasi_identifier",
                      "min": 17, "max": 90}, ...]}

    Column types: ``integer``, ``float``, ``categorical``, ``boolean``, ``datetime``.
    Bounds (``min``/``max``) and ``categories`` in the schema are declared public;
    anything else about the domain must be estimated with differential privacy and
    its cost counted in ``privacy_spent()``.
    """

    name: ClassVar[str]
    is_private: ClassVar[bool] = True
    # Whether fit (and fit_counts), plan_privacy and budget_refusal take ``row_estimate=``: a row
    # estimate paid for outside the fit (a job's source version's), on which the fit then decides
    # without a ``rows`` stage of its own (synth_engine.privacy.row_count.PaidRowEstimate).
    takes_row_estimate: ClassVar[bool] = False
    # Set by a job runner; a generator that trains in epochs calls it with the fraction done (0..1).
    progress_callback: Callable[[float], None] | None = None

    @abstractmethod
    def fit(
        self,
        frame: pd.DataFrame,
        schema: dict[str, Any],
        epsilon: float,
        delta: float,
        random_state: int | None = None,
    ) -> Generator:
        """Train on ``frame`` spending at most (epsilon, delta); return ``self``."""

    @abstractmethod
    def sample(self, n_rows: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """Return ``n_rows`` synthetic rows; ``conditions`` maps a column to a value or to
        target shares ``{value: share}`` and is met by conditional sampling, not rejection."""

    def sample_for_output(self, n_rows: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """The rows ``sample`` gives, for writing out (``synth_engine.streaming.sample_to_file``):
        a generator may give a column of text as a pandas ``Categorical`` of the same values."""
        return self.sample(n_rows, conditions)

    # Whether the functions ``seeded_output`` returns may run at once, in any order, with the rows
    # of running them one after another in the order they were made (``sample_to_file`` then draws
    # several chunks at once); else they run one at a time, in that order.
    independent_draws: ClassVar[bool] = False

    def seeded_output(self, n_rows: int, conditions: dict[str, Any] | None = None) -> Callable[[], pd.DataFrame]:
        """``sample_for_output``'s draw in two steps: this call fixes which rows it gives (in the
        order of the calls) and the function returned draws them. Here the whole draw is left to
        that function, which takes from the model's sampling stream when it runs."""
        return functools.partial(self.sample_for_output, n_rows, conditions)

    @abstractmethod
    def check(self, frame: pd.DataFrame, schema: dict[str, Any]) -> list[str]:
        """Validate data against the schema and the generator's needs before anything is spent.

        Raise a ``GeneratorError`` for data the generator cannot use (a label with one class,
        an all-null column, infinite values, an undeclared ID-like column under DP); return
        warnings for what it can use but the user should know.
        """

    def plan_privacy(self, epsilon: float, delta: float, n_rows: int | None = None) -> PrivacySpent:
        """What ``fit`` will spend for this target, computed from public inputs only (no data).

        The plan is known before the job's first data access; the ledger's spend is this plan
        and ``privacy_spent()`` after ``fit`` must never exceed it. The row count is not public
        (add/remove neighbours, see :mod:`synth_engine.privacy.row_count`): jobs plan without
        it, and ``n_rows``, when given, is only a public size guess for predicting the noise.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement plan_privacy")

    def budget_refusal(self, schema: dict[str, Any], epsilon: float, delta: float, row_estimate: Any) -> Any:
        """Why ``fit(..., row_estimate=row_estimate)`` would refuse (ε, δ) as too small, or None.

        Only for generators with ``takes_row_estimate`` (``row_estimate`` a
        :class:`~synth_engine.privacy.row_count.PaidRowEstimate`), whose fit decides on the
        estimate before reading anything; the others say None (their fit decides on its own).
        """
        return None

    @abstractmethod
    def privacy_spent(self) -> PrivacySpent:
        """The (epsilon, delta) actually spent by ``fit``, with the accountant's inputs."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write JSON parameters plus arrays/tensors into ``directory`` (no pickle)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Generator:
        """Read a model written by ``save``."""
