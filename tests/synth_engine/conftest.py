"""Fixtures shared by the MST test modules: the Adult sample and its schema, read once a module.

A module that needs another Adult (``test_dp_tvae``, ``test_copula``, ``test_engine_postgres``)
defines its own ``adult`` or ``schema``, which overrides these for its tests."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.synth_engine.test_mst import adult_schema, read_adult


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return read_adult()


@pytest.fixture(scope="module")
def schema(adult: pd.DataFrame) -> dict:
    return adult_schema(adult)
