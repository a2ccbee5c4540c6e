"""The checks that keep the codebase in one shape: CI fails on a format or lint error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    beside_python = Path(sys.executable).with_name("ruff")
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: it is pinned in the test extras (scripts/setup.sh installs it)")
    return [found]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_ruff(), *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_tree_is_formatted_with_ruff():
    result = _run("format", "--check", ".")
    assert result.returncode == 0, "run `ruff format .`:\n" + result.stdout + result.stderr


def test_the_tree_passes_the_lint_rules():
    result = _run("check", ".")
    assert result.returncode == 0, "run `ruff check .`:\n" + result.stdout + result.stderr


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    beside_python = Path(sys.executable).with_name("mypy")
    command = [str(beside_python)] if beside_python.exists() else [sys.executable, "-m", "mypy"]
    return subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True, timeout=900)


# The application packages, checked with django-stubs and the DRF plugin ([tool.mypy] in pyproject.toml),
# every module of them: none is exempt.
TYPED_PACKAGES = ("config", "core", "governance", "synth_engine", "audits", "dashboard")


def test_the_apps_pass_the_type_checks():
    result = _mypy(*TYPED_PACKAGES)
    assert result.returncode == 0, "mypy found type errors:\n" + result.stdout + result.stderr
