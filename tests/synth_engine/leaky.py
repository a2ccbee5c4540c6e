"""Deliberately leaky "DP" generators: they claim (ε, δ)-DP and break it, so the privacy
assurance tests can show that the distinguishing game and the membership ceiling catch them.

They implement the public ``Generator`` interface only (nothing of the real generators'
internals): ``CopyingGenerator`` releases copies of the training rows, ``UnderNoisedGenerator``
releases independent 1-way marginals with the noise of a budget 1000 times larger than the one
it claims, over a domain read from the data without paying for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_engine.generators.base import Generator, PrivacySpent


class _ClaimsDP(Generator):
    is_private = True

    def check(self, frame: pd.DataFrame, schema: dict[str, Any]) -> list[str]:
        return []

    def privacy_spent(self) -> PrivacySpent:
        return PrivacySpent(self.epsilon_, self.delta_, "claimed, not accounted")

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> Generator:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        return {}


class CopyingGenerator(_ClaimsDP):
    """Releases the training rows themselves, shuffled (cycled when more rows are asked for)."""

    name = "leaky-copy"

    def fit(
        self,
        frame: pd.DataFrame,
        schema: dict[str, Any],
        epsilon: float,
        delta: float,
        random_state: int | None = None,
    ) -> CopyingGenerator:
        self.frame_ = frame.reset_index(drop=True)
        self.rng_ = np.random.default_rng(random_state)
        self.epsilon_, self.delta_ = float(epsilon), float(delta)
        return self

    def sample(self, n_rows: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = np.resize(self.rng_.permutation(len(self.frame_)), n_rows)
        return self.frame_.iloc[rows].reset_index(drop=True)


class UnderNoisedGenerator(_ClaimsDP):
    """Independent 1-way marginals with Gaussian noise σ = ``noise_scale`` rows (far too little
    for the claimed ε) over the categories and values seen in the data."""

    name = "leaky-marginals"

    def __init__(self, noise_scale: float = 0.01) -> None:
        self.noise_scale = noise_scale

    def get_params(self) -> dict[str, Any]:
        return {"noise_scale": self.noise_scale}

    def fit(
        self,
        frame: pd.DataFrame,
        schema: dict[str, Any],
        epsilon: float,
        delta: float,
        random_state: int | None = None,
    ) -> UnderNoisedGenerator:
        self.rng_ = np.random.default_rng(random_state)
        self.marginals_ = {}
        for column in frame.columns:
            counts = frame[column].value_counts(dropna=False)
            noisy = np.clip(counts.to_numpy(dtype=float) + self.rng_.normal(0, self.noise_scale, len(counts)), 0, None)
            self.marginals_[column] = (counts.index.to_numpy(), noisy)
        self.columns_ = list(frame.columns)
        self.epsilon_, self.delta_ = float(epsilon), float(delta)
        return self

    def sample(self, n_rows: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        columns = {}
        for column in self.columns_:
            values, weights = self.marginals_[column]
            expected = n_rows * weights / weights.sum()
            counts = np.floor(expected).astype(int)
            leftover = n_rows - counts.sum()
            counts[np.argsort(-(expected - counts))[:leftover]] += 1  # largest remainders
            columns[column] = self.rng_.permutation(np.repeat(values, counts))
        return pd.DataFrame(columns)
