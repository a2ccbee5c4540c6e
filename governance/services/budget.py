"""The privacy-budget ledger: reserve on approval, spend at first data access, release; and
once per source version, the DP estimate of its row count that requesters' answers are computed
from (:func:`version_public_rows`).

Amounts are exact Decimals. Every check-and-write happens under the dataset's row lock
(``SELECT ... FOR UPDATE``), so concurrent approvals can never overspend a cap.
"""

from __future__ import annotations

import secrets
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from core.amounts import EPSILON_PLACES, amount_text
from core.errors import BudgetExhaustedError, ConflictError
from governance.models import BudgetEntry, DataRequest, Dataset, DatasetVersion, EntryKind
from governance.selectors import budget_balance
from governance.services.audit_log import audit_event_record

if TYPE_CHECKING:  # for annotations only: the engine sits above governance and imports it
    from synth_engine.models import GenerationJob
    from synth_engine.privacy.row_count import PaidRowEstimate

ZERO = Decimal(0)


def budget_reserve(*, request: DataRequest, actor: User) -> BudgetEntry:
    """Reserve the request's (ε, δ); refuse with the remaining budget if a cap would be exceeded.

    The caller holds the dataset's row lock inside its transaction.
    """
    balance = budget_balance(dataset=request.dataset)
    if request.epsilon > balance.epsilon_remaining or request.delta > balance.delta_remaining:
        asked = {"epsilon": amount_text(request.epsilon), "delta": amount_text(request.delta)}
        remaining = {"epsilon": amount_text(balance.epsilon_remaining), "delta": amount_text(balance.delta_remaining)}
        raise BudgetExhaustedError(
            f"Approving request #{request.pk} would exceed the budget of dataset {request.dataset.name!r}: "
            f"it asks ε={asked['epsilon']}, δ={asked['delta']}; remaining ε={remaining['epsilon']}, "
            f"δ={remaining['delta']}.",
            extra={"requested": asked, "remaining": remaining},
        )
    return _entry_create(
        request=request,
        kind=EntryKind.RESERVE,
        epsilon=request.epsilon,
        delta=request.delta,
        actor=actor,
        note="reserved at final approval",
    )


def budget_reservation(*, request: DataRequest) -> tuple[Decimal, Decimal]:
    """The request's reservation still outstanding (zero when spent, released or never made)."""
    outstanding = [ZERO, ZERO]
    for kind, epsilon, delta in request.budget_entries.values_list("kind", "epsilon", "delta"):
        sign = 1 if kind == EntryKind.RESERVE else -1
        outstanding[0] += sign * epsilon
        outstanding[1] += sign * delta
    return outstanding[0], outstanding[1]


def budget_spend(
    *,
    request: DataRequest,
    job: GenerationJob | None,
    epsilon: Decimal,
    delta: Decimal,
    mechanism: str,
    accountant: dict[str, Any],
    actor: User | None,
) -> BudgetEntry:
    """Turn the reservation into a spend of what the job's accountant plans; idempotent per request.

    A second call (a redelivered task) returns the existing spend. Any part of the reservation
    the plan does not use is released in the same transaction.
    """
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=request.dataset_id)
        existing = request.budget_entries.filter(kind=EntryKind.SPEND).first()
        if existing is not None:
            return existing
        reserved_epsilon, reserved_delta = budget_reservation(request=request)
        if reserved_epsilon <= 0 and reserved_delta <= 0:
            raise ConflictError(f"Request #{request.pk} has no outstanding reservation to spend.")
        if epsilon > reserved_epsilon or delta > reserved_delta:
            raise BudgetExhaustedError(
                f"The job plans ε={amount_text(epsilon)}, δ={amount_text(delta)}, more than the reservation "
                f"ε={amount_text(reserved_epsilon)}, δ={amount_text(reserved_delta)}; it will not start.",
                extra={"reserved": {"epsilon": amount_text(reserved_epsilon), "delta": amount_text(reserved_delta)}},
            )
        entry = _entry_create(
            request=request,
            job=job,
            kind=EntryKind.SPEND,
            epsilon=epsilon,
            delta=delta,
            actor=actor,
            mechanism=mechanism,
            accountant=accountant,
            note="spent at the job's first data access",
        )
        if epsilon < reserved_epsilon or delta < reserved_delta:
            _entry_create(
                request=request,
                job=job,
                kind=EntryKind.RELEASE,
                epsilon=reserved_epsilon - epsilon,
                delta=reserved_delta - delta,
                actor=actor,
                note="unused part of the reservation",
            )
        return entry


def budget_release(
    *, request: DataRequest, actor: User | None, note: str, job: GenerationJob | None = None
) -> BudgetEntry | None:
    """Give back an outstanding reservation (withdrawn request, job failed before touching data)."""
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=request.dataset_id)
        if request.budget_entries.filter(kind__in=[EntryKind.SPEND, EntryKind.RELEASE]).exists():
            return None
        epsilon, delta = budget_reservation(request=request)
        if epsilon <= 0 and delta <= 0:
            return None
        return _entry_create(
            request=request, job=job, kind=EntryKind.RELEASE, epsilon=epsilon, delta=delta, actor=actor, note=note
        )


def _entry_create(
    *,
    request: DataRequest,
    kind: str,
    epsilon: Decimal,
    delta: Decimal,
    actor: User | None,
    job: GenerationJob | None = None,
    mechanism: str = "",
    accountant: dict[str, Any] | None = None,
    note: str = "",
) -> BudgetEntry:
    entry = BudgetEntry.objects.create(
        dataset_id=request.dataset_id,
        request=request,
        job=job,
        kind=kind,
        epsilon=epsilon,
        delta=delta,
        mechanism=mechanism,
        accountant=accountant or {},
        actor=actor if getattr(actor, "pk", None) else None,
        note=note,
    )
    audit_event_record(
        actor=actor,
        action=f"budget.{kind}",
        obj=entry,
        after={
            "dataset": request.dataset.name,
            "request": request.pk,
            "job": getattr(job, "pk", None),
            "epsilon": epsilon,
            "delta": delta,
            "mechanism": mechanism,
        },
    )
    return entry


def ledger_amount(value: float | Decimal, *, places: int) -> Decimal:
    """An accountant's float as a ledger Decimal, rounded up so the ledger never under-reports."""
    return Decimal(repr(value) if isinstance(value, float) else value).quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_CEILING
    )


ROW_ESTIMATE_MECHANISM = "discrete_laplace_row_count"


def row_estimate_epsilon() -> Decimal:
    """ε of one source version's public row estimate (``SYNTHGATE_ROW_ESTIMATE_EPSILON``, δ = 0)."""
    return ledger_amount(float(settings.SYNTHGATE_ROW_ESTIMATE_EPSILON), places=EPSILON_PLACES)


def version_public_rows(*, version: DatasetVersion, actor: User | None, rng: np.random.Generator | None = None) -> int:
    """The size of ``version`` a requester's answers may depend on: its DP row estimate.

    The exact row count is private (add/remove neighbours differ in it), so the request outlook
    and filing's refusals are computed from this estimate, never from ``n_rows``. It is drawn
    once per version, on first need, with pure ε-DP (:func:`row_estimate_epsilon`, δ = 0), and
    paid for by one ledger entry of kind ``estimate`` that names the version and no request;
    later calls return the stored figure. Refused, with nothing written, when the dataset's
    remaining budget cannot pay for it. ``rng`` is for tests only (default: 128 secret bits).
    """
    from synth_engine.privacy.row_count import public_row_estimate, public_row_scale

    if version.public_rows is not None:
        return version.public_rows
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=version.dataset_id)
        locked = DatasetVersion.objects.get(pk=version.pk)
        if locked.public_rows is None:
            epsilon = row_estimate_epsilon()
            remaining = budget_balance(dataset=dataset).epsilon_remaining
            if epsilon > remaining:
                raise BudgetExhaustedError(
                    f"Dataset {dataset.name!r} cannot be requested: its size is private and a request is judged "
                    f"on a DP estimate of it, which costs ε={amount_text(epsilon)} once per version; only "
                    f"ε={amount_text(remaining)} remains.",
                    extra={"field": "dataset", "estimate_epsilon": amount_text(epsilon)},
                )
            generator = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
            locked.public_rows = public_row_estimate(locked.n_rows, float(epsilon), generator)
            locked.save(update_fields=["public_rows"])
            entry = BudgetEntry.objects.create(
                dataset=dataset,
                version=locked,
                kind=EntryKind.ESTIMATE,
                epsilon=epsilon,
                delta=Decimal(0),
                mechanism=ROW_ESTIMATE_MECHANISM,
                accountant={
                    "mechanism": "discrete Laplace (two-sided geometric), sensitivity 1 (add/remove one row)",
                    "epsilon": float(epsilon),
                    "delta": 0.0,
                    "noise_sd_rows": public_row_scale(float(epsilon)),
                },
                actor=actor if getattr(actor, "pk", None) else None,
                note=f"DP row estimate of {locked}, once per version",
            )
            audit_event_record(
                actor=actor,
                action=f"budget.{EntryKind.ESTIMATE}",
                obj=entry,
                after={
                    "dataset": dataset.name,
                    "request": None,
                    "job": None,
                    "version": locked.number,
                    "epsilon": epsilon,
                    "delta": Decimal(0),
                    "mechanism": ROW_ESTIMATE_MECHANISM,
                    "public_rows": locked.public_rows,
                },
            )
    version.public_rows = locked.public_rows
    return locked.public_rows


def version_row_estimate(*, version: DatasetVersion, holdout_fraction: float | Decimal) -> PaidRowEstimate:
    """The row estimate a request on ``version`` is decided on: filing's and approval's refusal of
    too small an ε, and the job's fit (which then spends nothing on n).

    Its training rows, :func:`~synth_engine.privacy.row_count.training_rows` of the version's DP
    row estimate (:func:`version_public_rows`, drawn and charged on first need), so the three
    decisions are one function of the same paid figure. The record names the ledger entry that
    paid for it and its ε, charged there once; the fit charges nothing for it.
    """
    from synth_engine.privacy.row_count import PaidRowEstimate, training_rows

    if version.rows_declared:  # the steward declared the exact count public: nothing to pay for
        return PaidRowEstimate(
            rows=training_rows(version.n_rows, float(holdout_fraction)),
            source=f"the row count of {version} its steward declared public at registration, "
            f"times 1 - the holdout fraction {float(holdout_fraction):g}",
            epsilon=0.0,
            charged="nothing: declared public (its dataset_version.create event records the declaration)",
        )
    rows = version_public_rows(version=version, actor=None)
    entry = BudgetEntry.objects.filter(version=version, kind=EntryKind.ESTIMATE).first()
    return PaidRowEstimate(
        rows=training_rows(rows, float(holdout_fraction)),
        source=f"the DP row estimate of {version} (ledger entry {entry.pk if entry else None}), "
        f"times 1 - the holdout fraction {float(holdout_fraction):g}",
        epsilon=float(entry.epsilon) if entry else 0.0,
        charged="the dataset's ledger, once per version (kind 'estimate'); not by this fit",
    )
