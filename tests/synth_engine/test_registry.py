"""The generator registry: lookup by name, and no deep-learning stack unless dp-tvae is used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synth_engine.generators import GENERATORS, GeneratorError, generator_class, get_generator

ROOT = Path(__file__).resolve().parents[2]


def test_building_mst_or_copula_does_not_import_torch_or_opacus() -> None:
    code = (
        "import sys; from synth_engine.generators import get_generator, MSTGenerator; "
        "get_generator('mst'); get_generator('copula'); "
        "print(sorted(m for m in ('torch', 'opacus') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_registry_entries_name_classes_that_agree_with_them() -> None:
    for name, entry in GENERATORS.items():
        cls = generator_class(name)
        assert cls.name == name and cls.is_private == entry.is_private


def test_unknown_generators_and_parameters_are_refused_with_the_valid_choices() -> None:
    with pytest.raises(GeneratorError, match="choose one of"):
        get_generator("gan")
    with pytest.raises(GeneratorError, match="valid parameters"):
        get_generator("mst", learning_rate=0.1)


@pytest.mark.parametrize("name", ["mst", "dp-tvae"])
@pytest.mark.parametrize(("epsilon", "delta"), [(True, 1e-5), (1.0, True), (0.0, 1e-5), (float("inf"), 1e-5)])
def test_every_dp_generator_refuses_the_same_bad_targets(name: str, epsilon, delta) -> None:
    # One home for the input checks: MST used to accept epsilon=True as 1, dp-tvae refused it.
    with pytest.raises(GeneratorError, match="epsilon|delta"):
        get_generator(name).plan_privacy(epsilon, delta)


@pytest.mark.parametrize(("epsilon", "delta"), [(True, 1e-5), (1.0, True), ("1", 1e-5), (None, 0.0)])
def test_the_non_private_copula_refuses_a_target_that_is_not_a_number(epsilon, delta) -> None:
    # The copula ignores (ε, δ), but through the same shared check: True is not an ε for any generator.
    with pytest.raises(GeneratorError, match="must be a number"):
        get_generator("copula").plan_privacy(epsilon, delta)


def test_the_non_private_copula_plans_no_guarantee_for_any_numeric_target() -> None:
    for epsilon, delta in ((float("inf"), 0.0), (1.0, 1e-5), (0.0, 0.0)):
        assert not get_generator("copula").plan_privacy(epsilon, delta).is_private
