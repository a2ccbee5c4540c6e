"""Prepared inputs shared by the privacy checks: embeddings and row keys computed once.

The privacy checks and the positive controls look at the same training and holdout rows many
times; :class:`AuditData` embeds and hashes them once, :class:`SyntheticRows` does the same for a
synthetic table, and :func:`plant_copies` builds a positive control from those without
re-embedding anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from audits.metrics.encoding import Embedder, TableSchema, nearest_neighbours, row_keys
from audits.metrics.power import planted_rows


@dataclass
class SyntheticRows:
    """A synthetic table with its embedding and full-row keys.

    ``nearest`` caches each named nearest-neighbour search. A positive control (``parent`` set,
    ``planted`` positions replaced) reuses its parent's searches: only the planted rows and the
    queries whose nearest row was replaced are searched again, which gives the same answer as a
    full search (ties still go to the lower index) at a fraction of the cost.
    """

    frame: pd.DataFrame
    embedding: np.ndarray
    keys: np.ndarray
    planted: np.ndarray | None = None  # positions of planted training rows (controls only)
    parent: SyntheticRows | None = None
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def nearest(
        self, name: str, queries: np.ndarray, features: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distance to and index of each query's nearest synthetic row, shapes ``(n_queries,)``;
        ``name`` labels the search (the cache key also fingerprints the queries and features)."""
        queries = np.ascontiguousarray(queries if features is None else queries[:, features])
        digest = hashlib.blake2b(queries.tobytes(), digest_size=16)
        digest.update(b"" if features is None else np.asarray(features, dtype=np.int64).tobytes())
        name = f"{name}:{digest.hexdigest()}"
        if name in self.cache:
            return self.cache[name]
        inherited = self.parent.cache.get(name) if self.parent is not None else None
        if inherited is None or self.planted is None:
            distance, index = nearest_neighbours(queries, self.embedding, features=features)
            result = distance[:, 0], index[:, 0]
        else:
            result = self._patched(queries, features, *inherited)
        self.cache[name] = result
        return result

    def _patched(
        self, queries: np.ndarray, features: np.ndarray | None, distance: np.ndarray, index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        planted = self.planted
        if planted is None:
            raise ValueError("only a context with planted rows patches its parent's searches")
        stale = np.flatnonzero(np.isin(index, planted))  # their nearest row was replaced
        near, local = nearest_neighbours(queries, self.embedding[planted], features=features)
        near, position = near[:, 0], planted[local[:, 0]]
        take = (near < distance) | ((near == distance) & (position < index))
        distance, index = np.where(take, near, distance), np.where(take, position, index)
        if stale.size:
            again, where = nearest_neighbours(queries[stale], self.embedding, features=features)
            distance[stale], index[stale] = again[:, 0], where[:, 0]
        return distance, index


@dataclass
class AuditData:
    """Training and holdout rows, embedded and hashed on the training rows' terms."""

    schema: TableSchema
    train: pd.DataFrame
    holdout: pd.DataFrame
    embedder: Embedder
    train_embedding: np.ndarray
    holdout_embedding: np.ndarray
    train_keys: np.ndarray
    holdout_keys: np.ndarray
    memo: dict = field(default_factory=dict, repr=False)  # draws that depend only on these rows

    @classmethod
    def prepare(cls, train: pd.DataFrame, holdout: pd.DataFrame, schema: TableSchema) -> AuditData:
        columns = list(schema.columns)
        train = train[columns].reset_index(drop=True)
        holdout = holdout[columns].reset_index(drop=True)
        embedder = Embedder(schema).fit(train)
        return cls(
            schema,
            train,
            holdout,
            embedder,
            embedder.transform(train),
            embedder.transform(holdout),
            row_keys(train, columns),
            row_keys(holdout, columns),
        )

    def synthetic(self, frame: pd.DataFrame) -> SyntheticRows:
        columns = list(self.schema.columns)
        frame = frame[columns].reset_index(drop=True)
        return SyntheticRows(frame, self.embedder.transform(frame), row_keys(frame, columns))


def plant_copies(
    data: AuditData, synthetic: SyntheticRows, share: float, random_state: int, pool: np.ndarray | None = None
) -> SyntheticRows:
    """A positive control: ``synthetic`` with ``ceil(share * n)`` rows (at least one) replaced by
    verbatim training rows drawn without replacement.

    ``pool`` (training-row indices) restricts where the copies come from: the membership attack
    scores a sample of training rows, and leaked rows it never scores cannot show its power.
    When the synthetic table is much smaller than the training table, copies drawn from the
    whole table would touch only a sliver of the scored members (500 of 39,073 rows is 1.3 %,
    at the attack's noise floor), and a sound audit would be called inconclusive.
    """
    rng = np.random.default_rng(random_state)
    n = len(synthetic.frame)
    candidates = np.arange(len(data.train)) if pool is None or len(pool) == 0 else np.asarray(pool)
    n_planted = planted_rows(n, share, len(candidates))
    positions = np.sort(rng.choice(n, n_planted, replace=False))
    sources = rng.choice(candidates, n_planted, replace=False)
    return replace_rows(data, synthetic, positions, sources)


def replace_rows(
    data: AuditData, synthetic: SyntheticRows, positions: np.ndarray, sources: np.ndarray
) -> SyntheticRows:
    """``synthetic`` with rows ``positions`` replaced by training rows ``sources``."""
    frame = synthetic.frame.copy()
    frame.iloc[positions] = data.train.iloc[sources].to_numpy()
    frame = frame.astype(synthetic.frame.dtypes.to_dict())
    embedding = synthetic.embedding.copy()
    embedding[positions] = data.train_embedding[sources]
    keys = synthetic.keys.copy()
    keys[positions] = data.train_keys[sources]
    return SyntheticRows(frame, embedding, keys, planted=positions, parent=synthetic)
