"""Governance fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(settings, tmp_path) -> Path:
    """A fresh, empty data directory for the test (stored tables, signing key, fingerprints)."""
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR
