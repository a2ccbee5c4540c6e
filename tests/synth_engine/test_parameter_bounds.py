"""Every bounded parameter of mst and copula: the edges of its range are accepted, a step beyond
either edge and a value of the wrong type are refused with a message naming the parameter, its
generator and its range (dp-tvae's are covered where requests are filed, in
tests/governance/test_request_validation.py)."""

from __future__ import annotations

import math

import pytest

from synth_engine.generators import GeneratorError, get_generator
from synth_engine.generators.parameters import PARAMETER_BOUNDS, Bound, ParameterError, check_parameters

GENERATORS = ("mst", "copula")


def _inside(bound: Bound) -> list[object]:
    if bound.kind == "bool":
        return [True, False]
    if bound.kind == "choice":
        return list(bound.choices)
    low, high = bound.low, bound.high
    assert low is not None and high is not None
    if bound.kind == "int":
        return [int(low), int(high)]
    return [
        math.nextafter(low, math.inf) if bound.low_open else low,
        math.nextafter(high, -math.inf) if bound.high_open else high,
    ]


def _outside(bound: Bound) -> list[object]:
    """A step beyond each edge, the wrong type, NaN and a boolean for a number."""
    if bound.kind == "bool":
        return ["yes", 1, 0, None]
    if bound.kind == "choice":
        return ["forest", "", 1, None]
    low, high = bound.low, bound.high
    assert low is not None and high is not None
    if bound.kind == "int":
        return [int(low) - 1, int(high) + 1, float(low) + 0.5, str(int(low)), True, None]
    below = low if bound.low_open else math.nextafter(low, -math.inf)
    above = high if bound.high_open else math.nextafter(high, math.inf)
    return [below, above, str(low), math.nan, math.inf, True, None]


CASES = [(generator, name, bound) for generator in GENERATORS for name, bound in PARAMETER_BOUNDS[generator].items()]


def test_every_constructor_parameter_of_mst_and_copula_with_a_number_or_choice_is_bounded():
    import inspect

    from synth_engine.generators import generator_class

    for generator in GENERATORS:
        signature = inspect.signature(generator_class(generator))
        numeric = {
            name
            for name, parameter in signature.parameters.items()
            if isinstance(parameter.default, bool | int | float | str) and name != "random_state"
        }
        assert numeric <= set(PARAMETER_BOUNDS[generator]), (generator, numeric - set(PARAMETER_BOUNDS[generator]))


@pytest.mark.parametrize(("generator", "name", "bound"), CASES, ids=[f"{g}.{n}" for g, n, _ in CASES])
def test_the_edges_are_accepted_and_a_step_beyond_or_a_wrong_type_refused(generator, name, bound):
    for value in _inside(bound):
        check_parameters(generator, {name: value})
        get_generator(generator, **{name: value})  # the constructor takes what the check lets through
    for value in _outside(bound):
        with pytest.raises(ParameterError) as refused:
            check_parameters(generator, {name: value})
        assert str(refused.value) == (
            f"parameter {name!r} of generator {generator!r} must be {bound.describe()}; got {value!r}"
        )
        with pytest.raises(GeneratorError, match=f"parameter '{name}' of generator '{generator}'"):
            get_generator(generator, **{name: value})


def test_the_ranges_read_as_a_person_would_write_them():
    mst, copula = PARAMETER_BOUNDS["mst"], PARAMETER_BOUNDS["copula"]
    assert mst["max_bins"].describe() == "a whole number in [2, 1,024]"
    assert mst["domain_fraction"].describe() == "a number in (0, 1)"
    assert mst["label_fraction"].describe() == "a number in [0, 1)"
    assert mst["structure"].describe() == "one of auto, tree"
    assert copula["n_quantiles"].describe() == "a whole number in [2, 100,000]"
    assert copula["per_class"].describe() == "true or false"
