"""Factories for governance models. Writes go through services where a rule applies."""

from __future__ import annotations

import tempfile
import zlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import factory
import pandas as pd
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.schema import proposed_type_columns
from governance.models import Purpose, Role
from governance.services import roles_ensure

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.django.Password("pw")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            roles_ensure()
            self.groups.set(Group.objects.filter(name__in=extracted))


class PurposeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purpose
        django_get_or_create = ("name",)

    name = "research"
    max_epsilon = Decimal("5")
    approvals_required = 2
    allowed_recipients = ["internal", "external"]
    audit_thresholds = {"tvd_1way": 0.1}


@dataclass
class Cast:
    steward: object
    requester: object
    other_requester: object
    approver: object
    second_approver: object
    auditor: object


def cast_create() -> Cast:
    return Cast(
        steward=UserFactory(username="steward", roles=[Role.STEWARD]),
        requester=UserFactory(username="requester", roles=[Role.REQUESTER]),
        other_requester=UserFactory(username="other_requester", roles=[Role.REQUESTER]),
        approver=UserFactory(username="approver", roles=[Role.APPROVER]),
        second_approver=UserFactory(username="second_approver", roles=[Role.APPROVER]),
        auditor=UserFactory(username="auditor", roles=[Role.AUDITOR]),
    )


def request_entries():
    """Ledger rows of requests: every row but the source versions' DP row estimates (one per
    source version, drawn at registration)."""
    from governance.models import BudgetEntry, EntryKind

    return BudgetEntry.objects.exclude(kind=EntryKind.ESTIMATE)


def proposed_types_declared(*, steward, name: str):
    """The steward declares every type registration proposed from the rows, as proposed (the one
    step of ``synthgate dataset declare NAME --accept-proposed-types``); the newest source version.
    A version with a proposed type cannot be requested, so a test that registers a file without a
    schema and then files a request declares its types with this first."""
    from governance.services import dataset_schema_types_accept

    return dataset_schema_types_accept(actor=steward, name=name).version


def dataset_register_adult(
    *, steward, name: str = "adult", epsilon_cap="10", delta_cap="1e-4", schema=None, declare_types: bool = True
):
    """Register the 2,000-row adult fixture through the real service.

    Any name but ``adult`` gets its own population: the same rows with ``fnlwgt`` shifted by
    an amount derived from the name, since the same rows under a second name are refused.
    Without a schema the proposed types are declared as proposed (``proposed_types_declared``)
    unless ``declare_types`` is false.
    """
    from governance.services import dataset_register

    path = FIXTURES / "adult_2000.csv"
    with tempfile.TemporaryDirectory() as directory:
        if name != "adult":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            frame["fnlwgt"] = (frame["fnlwgt"].astype(int) + zlib.crc32(name.encode()) % 99_991 + 1).astype(str)
            path = Path(directory) / "adult_2000.csv"
            frame.to_csv(path, index=False)
        version = dataset_register(
            actor=steward,
            name=name,
            path=path,
            filename=path.name,
            epsilon_cap=epsilon_cap,
            delta_cap=delta_cap,
            schema=schema,
        ).version
    if schema is None and declare_types and proposed_type_columns(version.schema):
        return proposed_types_declared(steward=steward, name=name)
    return version


def request_file(
    *,
    requester,
    dataset_name: str = "adult",
    purpose_name: str = "research",
    epsilon="1",
    delta="1e-6",
    n_rows=500,
    submit: bool = True,
    **extra,
):
    from governance.services import access_request_create

    return access_request_create(
        actor=requester,
        dataset_name=dataset_name,
        purpose_name=purpose_name,
        epsilon=epsilon,
        delta=delta,
        n_rows=n_rows,
        submit=submit,
        **extra,
    )
