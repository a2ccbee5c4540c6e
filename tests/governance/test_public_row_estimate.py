"""The exact row count never reaches a requester through the request outlook or filing's
refusals (issue 11.2): both are computed from the source version's DP row estimate, drawn once
per version with ε = 0.02 (δ = 0) and charged to the dataset's ledger.

The distinguishing game: two source versions whose exact counts differ by one row, at the size
where the audit's decidability flips (605 and 606 rows at 170 synthetic rows, holdout 20 %). On
the old code (the exact count) a requester's outlook and filing answer differently on the two;
here the answers are a function of the estimate alone, so with the estimates coupled to the
same value they are identical, and their distributions differ only as the estimate's do
(by e^ε). Stewards still read exact figures.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from core.errors import BudgetExhaustedError, ValidationError
from governance.models import AuditEvent, BudgetEntry, DataRequest, Dataset, DatasetVersion, EntryKind, VersionKind
from governance.services import access_request_outlook, audit_log_verify, budget_balance, version_public_rows
from governance.services.budget import row_estimate_epsilon
from synth_engine.privacy.row_count import public_row_estimate, public_row_scale
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_entries, request_file

pytestmark = pytest.mark.django_db

SMALL, LARGE = 605, 606  # holdout 121 and 122 rows: the smallest decisive synthetic size is 161, then 181
SYNTHETIC = 170  # decisive on 605 exact rows, not on 606
# ε = 3: small tables need a larger ε for MST (about 204 training rows and 15 columns need ε ≥ 1.93
# at δ = 1e-6), and filing refuses less; 3 stays clear of that at 484 training rows
OUTLOOK = {"purpose_name": "research", "epsilon": "3", "delta": "1e-6", "n_rows": SYNTHETIC}


def unestimated_source(cast, adult_schema, *, name: str, n_rows: int, epsilon_cap: str = "10") -> DatasetVersion:
    """A source version as one registered before the estimate existed: no ``public_rows`` yet.
    Neither the outlook nor filing reads the table, so no file is stored."""
    dataset = Dataset.objects.create(
        name=name, owner=cast.steward, epsilon_cap=Decimal(epsilon_cap), delta_cap=Decimal("1e-4")
    )
    return DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        kind=VersionKind.SOURCE,
        content_hash=f"{n_rows:064d}",
        storage_key=f"datasets/{name}/absent.csv",
        n_rows=n_rows,
        n_columns=len(adult_schema["columns"]),
        schema=adult_schema,
        rows_checked=True,  # as registration records it (the file is absent: nothing reads the rows here)
    )


def seed_for(n_rows: int, estimate: int) -> int:
    """A seed whose draw of the mechanism on ``n_rows`` gives ``estimate`` (a coupling: the
    estimate is the only thing the requester's answers may depend on)."""
    epsilon = float(row_estimate_epsilon())
    for seed in range(100_000):
        if public_row_estimate(n_rows, epsilon, np.random.default_rng(seed)) == estimate:
            return seed
    raise AssertionError(f"no seed draws {estimate} from {n_rows}")


def requester_answers(cast, name: str) -> tuple[dict, str]:
    outlook = access_request_outlook(actor=cast.requester, dataset_name=name, **OUTLOOK)
    outlook.pop("dataset")
    try:
        request_file(requester=cast.requester, dataset_name=name, n_rows=SYNTHETIC, epsilon=OUTLOOK["epsilon"])
        filing = "filed"
    except ValidationError as error:
        filing = error.message
    return outlook, filing


def test_requester_answers_one_row_apart_are_identical_when_the_estimates_are(cast, adult_schema):
    PurposeFactory(name="research")
    small = unestimated_source(cast, adult_schema, name="small", n_rows=SMALL)
    large = unestimated_source(cast, adult_schema, name="large", n_rows=LARGE)
    # the steward's outlook is exact: it tells the two tables apart (the old requester view did too)
    steward = {
        version.dataset.name: access_request_outlook(actor=cast.steward, dataset_name=version.dataset.name, **OUTLOOK)
        for version in (small, large)
    }
    assert steward["small"]["membership"]["minimum_rows"] == 161
    assert steward["large"]["membership"]["minimum_rows"] == 181
    assert steward["small"]["predicted_verdict"] != "inconclusive" == steward["large"]["predicted_verdict"]
    assert (steward["small"]["n_train"], steward["large"]["n_train"]) == (SMALL - 121, LARGE - 122)

    estimate = public_row_estimate(SMALL, float(row_estimate_epsilon()), np.random.default_rng(7))
    for version in (small, large):
        rng = np.random.default_rng(seed_for(version.n_rows, estimate))
        assert version_public_rows(version=version, actor=cast.steward, rng=rng) == estimate

    small_outlook, small_filing = requester_answers(cast, "small")
    large_outlook, large_filing = requester_answers(cast, "large")
    assert small_outlook == large_outlook
    assert small_filing.replace("small", "large") == large_filing
    # what a steward reads is still exact
    assert access_request_outlook(actor=cast.steward, dataset_name="large", **OUTLOOK) == steward["large"]


def test_the_answers_follow_the_estimate_not_the_count(cast, adult_schema):
    """The same exact count with estimates on either side of the boundary gets the two answers:
    the refusal is a post-processing of the estimate (and states no count)."""
    PurposeFactory(name="research")
    low = unestimated_source(cast, adult_schema, name="low", n_rows=SMALL)
    high = unestimated_source(cast, adult_schema, name="high", n_rows=SMALL)
    version_public_rows(version=low, actor=None, rng=np.random.default_rng(seed_for(SMALL, SMALL)))
    version_public_rows(version=high, actor=None, rng=np.random.default_rng(seed_for(SMALL, LARGE)))

    low_outlook, low_filing = requester_answers(cast, "low")
    high_outlook, high_filing = requester_answers(cast, "high")

    assert low_filing == "filed"
    assert "the audit could not decide (inconclusive): ask for at least" in high_filing
    assert str(SMALL) not in high_filing and str(LARGE) not in high_filing
    assert (low_outlook["membership"]["minimum_rows"], high_outlook["membership"]["minimum_rows"]) == (161, 181)
    assert low_outlook["n_train"] is None and low_outlook["n_holdout"] is None


def test_the_estimate_is_charged_once_per_source_version_at_registration(cast, settings, tmp_path, adult_schema):
    settings.DATA_DIR = tmp_path
    PurposeFactory(name="research")
    version = dataset_register_adult(steward=cast.steward, schema=adult_schema)

    [entry] = BudgetEntry.objects.filter(kind=EntryKind.ESTIMATE)
    assert (entry.version, entry.request, entry.epsilon, entry.delta) == (version, None, Decimal("0.02"), 0)
    assert entry.actor == cast.steward
    version.refresh_from_db()
    assert version.public_rows is not None and version.public_rows >= 1
    assert abs(version.public_rows - version.n_rows) < 20 * public_row_scale(0.02)  # ~71 rows sd

    for _ in range(2):
        access_request_outlook(actor=cast.requester, dataset_name="adult", **{**OUTLOOK, "n_rows": 500})
        request_file(requester=cast.requester, n_rows=500)
    again = dataset_register_adult(steward=cast.steward, schema=adult_schema)  # the same content: no new version
    assert again == version
    assert list(BudgetEntry.objects.filter(kind=EntryKind.ESTIMATE)) == [entry]
    assert budget_balance(dataset=version.dataset).epsilon_spent == Decimal("0.02")
    assert audit_log_verify().ok


def test_a_version_registered_before_the_estimate_pays_for_it_once_on_first_need(cast, adult_schema):
    PurposeFactory(name="research")
    version = unestimated_source(cast, adult_schema, name="legacy", n_rows=2000)

    for _ in range(3):
        access_request_outlook(actor=cast.requester, dataset_name="legacy", **{**OUTLOOK, "n_rows": 500})
    request_file(requester=cast.requester, dataset_name="legacy", n_rows=500)

    [entry] = BudgetEntry.objects.filter(kind=EntryKind.ESTIMATE)
    assert (entry.version_id, entry.request_id, entry.epsilon) == (version.pk, None, Decimal("0.02"))
    assert AuditEvent.objects.filter(action="budget.estimate").count() == 1
    assert DatasetVersion.objects.get(pk=version.pk).public_rows is not None


def test_a_steward_outlook_spends_nothing_on_an_estimate(cast, adult_schema):
    PurposeFactory(name="research")
    unestimated_source(cast, adult_schema, name="legacy", n_rows=2000)
    access_request_outlook(actor=cast.steward, dataset_name="legacy", **{**OUTLOOK, "n_rows": 500})
    assert not BudgetEntry.objects.exists()


def test_a_budget_that_cannot_pay_for_the_estimate_refuses_filing_and_writes_nothing(cast, adult_schema):
    PurposeFactory(name="research")
    unestimated_source(cast, adult_schema, name="tiny", n_rows=2000, epsilon_cap="0.01")
    before = (DataRequest.objects.count(), BudgetEntry.objects.count(), AuditEvent.objects.count())

    with pytest.raises(BudgetExhaustedError) as refused:
        request_file(requester=cast.requester, dataset_name="tiny", n_rows=500, epsilon="0.01")

    assert "costs ε=0.02 once per version; only ε=0.01 remains" in refused.value.message
    assert (DataRequest.objects.count(), BudgetEntry.objects.count(), AuditEvent.objects.count()) == before
    assert not request_entries().exists()


def test_the_mechanism_is_a_two_sided_geometric_of_the_stated_scale():
    """Moments of the draws (the guarantee itself is the textbook discrete Laplace mechanism);
    and the ratio of the probabilities of one output on neighbouring counts is e^ε."""
    epsilon = 0.02
    rng = np.random.default_rng(0)
    draws = np.array([public_row_estimate(10_000, epsilon, rng) for _ in range(20_000)]) - 10_000
    assert abs(draws.mean()) < 3 * public_row_scale(epsilon) / np.sqrt(len(draws))
    assert draws.std() == pytest.approx(public_row_scale(epsilon), rel=0.03)
    # P[Z = 0] / P[Z = 1] for the two-sided geometric is e^ε
    p0, p1 = np.mean(draws == 0), np.mean(draws == 1)
    assert p1 > 0 and p0 / p1 == pytest.approx(np.exp(epsilon), abs=0.2)
    with pytest.raises(ValueError):
        public_row_estimate(10, 0.0, rng)
