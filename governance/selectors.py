"""Permission-aware reads. Querysets decide select_related here, in one place."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import QuerySet

from core.errors import NotFoundError, PermissionDeniedError
from governance.ledger import BudgetBalance
from governance.models import (
    AuditEvent,
    BudgetEntry,
    DataRequest,
    Dataset,
    DatasetVersion,
    Purpose,
    Role,
    VersionKind,
)
from governance.permissions import SEE_ALL_REQUESTS, user_has_role, user_roles


def _require_some_role(user: User) -> None:
    if not user_roles(user):
        raise PermissionDeniedError("Your account has no Synthgate role; ask a steward to assign one.")


def dataset_list(*, user: User) -> QuerySet[Dataset]:
    _require_some_role(user)
    return Dataset.objects.select_related("owner").order_by("name")


def dataset_get(*, user: User, name: str) -> Dataset:
    dataset = dataset_list(user=user).filter(name=name).first()
    if dataset is None:
        raise NotFoundError(f"No dataset named {name!r}.")
    return dataset


def dataset_version_list(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("parent", "created_by").order_by("number")


def dataset_latest_source(*, dataset: Dataset) -> DatasetVersion | None:
    return dataset.versions.filter(kind=VersionKind.SOURCE).order_by("-number").first()


def purpose_list(*, user: User) -> QuerySet[Purpose]:
    _require_some_role(user)
    return Purpose.objects.order_by("name")


def purpose_get(*, user: User, name: str) -> Purpose:
    purpose = purpose_list(user=user).filter(name=name).first()
    if purpose is None:
        raise NotFoundError(f"No purpose named {name!r}.")
    return purpose


def request_list(*, user: User) -> QuerySet[DataRequest]:
    """All requests for stewards, approvers and auditors; a requester's own otherwise."""
    _require_some_role(user)
    queryset = DataRequest.objects.select_related("dataset", "purpose", "requester", "source_version")
    if user_has_role(user, *SEE_ALL_REQUESTS):
        return queryset
    return queryset.filter(requester=user)


def request_get(*, user: User, request_id: int) -> DataRequest:
    """The request if the user may see it; 404 otherwise (never reveal that it exists)."""
    request = request_list(user=user).prefetch_related("approvals__approver").filter(pk=request_id).first()
    if request is None:
        raise NotFoundError(f"No request #{request_id}.")
    return request


def budget_entry_list(*, user: User, dataset: Dataset) -> QuerySet[BudgetEntry]:
    _require_some_role(user)
    return dataset.budget_entries.select_related("actor", "request", "job", "version").order_by("created_at", "id")


def budget_balances(*, datasets: Iterable[Dataset], before: datetime | None = None) -> dict[int, BudgetBalance]:
    """Each dataset's balance from one ledger query, exactly; ``before`` gives it as of that moment.

    The one place a balance is summed: the budget service, the API, the CLI, the dashboard,
    datasheets and compliance reports all read it here.
    """
    datasets = list(datasets)
    balances = {dataset.pk: BudgetBalance.opening(dataset) for dataset in datasets}
    entries = BudgetEntry.objects.filter(dataset__in=list(balances))
    if before is not None:
        entries = entries.filter(created_at__lt=before)
    for dataset_id, kind, epsilon, delta in entries.order_by("id").values_list(
        "dataset_id", "kind", "epsilon", "delta"
    ):
        balances[dataset_id] = balances[dataset_id].plus(kind, epsilon, delta)
    return balances


def budget_balance(*, dataset: Dataset, before: datetime | None = None) -> BudgetBalance:
    """Caps, spent, reserved and remaining (ε, δ) of one dataset (as of ``before``, if given)."""
    return budget_balances(datasets=[dataset], before=before)[dataset.pk]


def audit_event_list(*, user: User) -> QuerySet[AuditEvent]:
    """The whole log, for stewards and auditors."""
    if not user_has_role(user, Role.STEWARD, Role.AUDITOR):
        raise PermissionDeniedError("Only stewards and auditors can read the audit log.")
    return AuditEvent.objects.select_related("actor").order_by("id")


def audit_event_search(
    *,
    user: User,
    object_type: str = "",
    object_id: str = "",
    actor: str = "",
    action: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The log narrowed by object, actor, action and period (``end`` excluded), newest first."""
    events = audit_event_list(user=user)
    narrowing = {
        "object_type": object_type,
        "object_id": object_id,
        "actor_name": actor,
        "action": action,
        "created_at__gte": start,
        "created_at__lt": end,
    }
    return events.filter(**{key: value for key, value in narrowing.items() if value}).order_by("-id")
