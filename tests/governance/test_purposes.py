"""Purposes: a policy validated in full before anything is stored; defaults created once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ConflictError, PermissionDeniedError, ValidationError
from governance.models import AuditEvent, Purpose
from governance.policy import default_audit_thresholds
from governance.services import audit_log_verify, purpose_create, purposes_ensure_defaults
from governance.services.purposes import DEFAULT_PURPOSES

pytestmark = pytest.mark.django_db


def create(actor, **overrides) -> Purpose:
    fields = {
        "name": "research",
        "max_epsilon": "2.5",
        "approvals_required": 2,
        "allowed_recipients": ["internal", "external"],
        **overrides,
    }
    return purpose_create(actor=actor, **fields)


def assert_nothing_written() -> None:
    assert Purpose.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_creates_a_purpose_with_its_policy_and_an_audit_event(cast):
    purpose = create(
        cast.steward,
        audit_thresholds={"membership_domias_auc": 0.55, "k_anonymity": 5},
        description="Research partners",
        holdout_fraction="0.25",
        release_days=30,
    )

    purpose.refresh_from_db()
    assert (purpose.name, purpose.max_epsilon, purpose.approvals_required) == ("research", Decimal("2.5"), 2)
    assert purpose.allowed_recipients == ["external", "internal"]
    assert purpose.audit_thresholds == {"membership_domias_auc": 0.55, "k_anonymity": 5}
    assert (purpose.holdout_fraction, purpose.release_days, purpose.allow_non_private) == (Decimal("0.25"), 30, False)
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.object_id) == ("purpose.create", cast.steward, str(purpose.pk))
    assert event.after["max_epsilon"] == "2.5" and event.after["approvals_required"] == 2
    assert audit_log_verify().ok


def test_default_thresholds_apply_when_none_are_given(cast):
    assert create(cast.steward).audit_thresholds == default_audit_thresholds()


def test_an_empty_thresholds_object_is_kept_empty(cast):
    assert create(cast.steward, audit_thresholds={}).audit_thresholds == {}


@pytest.mark.parametrize("approvals", [1, 2, "1", "2"])
def test_accepts_one_or_two_approvals(cast, approvals):
    assert create(cast.steward, approvals_required=approvals).approvals_required == int(approvals)


@pytest.mark.parametrize("approvals", [0, 3, -1, "two", None])
def test_refuses_approvals_other_than_one_or_two(cast, approvals):
    with pytest.raises(ValidationError) as caught:
        create(cast.steward, approvals_required=approvals)
    assert caught.value.extra == {"field": "approvals_required"}
    assert_nothing_written()


@pytest.mark.parametrize("recipients", [[], ["partner"], ["internal", "public"], "internal"])
def test_refuses_recipients_that_are_not_a_non_empty_subset_of_the_kinds(cast, recipients):
    with pytest.raises(ValidationError) as caught:
        create(cast.steward, allowed_recipients=recipients)
    assert caught.value.extra == {"field": "allowed_recipients"}
    assert_nothing_written()


def test_recipients_default_to_internal_and_are_deduplicated(cast):
    assert create(cast.steward, name="a", allowed_recipients=None).allowed_recipients == ["internal"]
    assert create(cast.steward, name="b", allowed_recipients=["internal", "internal"]).allowed_recipients == [
        "internal"
    ]


@pytest.mark.parametrize(
    ("thresholds", "named"),
    [
        ({"fidelity_tvd_max": 0.1}, "'fidelity_tvd_max' was unexpected"),
        ({"membership_domias_auc": 0.4}, "membership_domias_auc: 0.4 is less than the minimum of 0.5"),
        ({"linkability_risk": 1.5}, "linkability_risk: 1.5 is greater than the maximum of 1"),
        ({"k_anonymity": 0}, "k_anonymity: 0 is less than the minimum of 1"),
        ({"k_anonymity": 2.5}, "k_anonymity: 2.5 is not of type 'integer'"),
        ({"exact_copies": "none"}, "exact_copies: 'none' is not of type 'number'"),
        ({"drift_psi": float("nan")}, "drift_psi: nan is not a finite number"),
        ({"drift_psi": float("inf")}, "drift_psi: inf is not a finite number"),
        ([0.1], "[0.1] is not of type 'object'"),
    ],
)
def test_refuses_audit_thresholds_naming_the_key_at_fault(cast, thresholds, named):
    with pytest.raises(ValidationError) as caught:
        create(cast.steward, audit_thresholds=thresholds)
    assert caught.value.message.startswith("audit_thresholds: ")
    assert named in caught.value.message
    assert caught.value.extra["field"] == "audit_thresholds"
    assert_nothing_written()


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("max_epsilon", {"max_epsilon": "0"}),
        ("max_epsilon", {"max_epsilon": "-1"}),
        ("max_epsilon", {"max_epsilon": "a lot"}),
        ("max_epsilon", {"max_epsilon": "NaN"}),
        ("holdout_fraction", {"holdout_fraction": "0.6"}),
        ("holdout_fraction", {"holdout_fraction": "0.01"}),
        ("release_days", {"release_days": 0}),
        ("release_days", {"release_days": "soon"}),
        ("name", {"name": "market research!"}),
        ("name", {"name": ""}),
    ],
)
def test_refuses_other_bad_fields_naming_them(cast, field, overrides):
    with pytest.raises(ValidationError) as caught:
        create(cast.steward, **overrides)
    assert caught.value.extra["field"] == field
    assert_nothing_written()


@pytest.mark.parametrize("who", ["requester", "approver", "auditor"])
def test_only_a_steward_may_define_a_purpose(cast, who):
    with pytest.raises(PermissionDeniedError):
        create(getattr(cast, who))
    assert_nothing_written()


def test_refuses_a_second_purpose_of_the_same_name_and_writes_nothing(cast):
    create(cast.steward)
    with pytest.raises(ConflictError, match="already exists"):
        create(cast.steward, max_epsilon="1")
    assert Purpose.objects.get().max_epsilon == Decimal("2.5")
    assert AuditEvent.objects.count() == 1


def test_defaults_are_created_once(db):
    created = purposes_ensure_defaults()
    again = purposes_ensure_defaults()

    assert sorted(p.name for p in created) == sorted(spec["name"] for spec in DEFAULT_PURPOSES)
    assert again == []
    assert Purpose.objects.count() == len(DEFAULT_PURPOSES)
    assert AuditEvent.objects.filter(action="purpose.create", actor_name="system").count() == len(DEFAULT_PURPOSES)
    external = Purpose.objects.get(name="external-research")
    assert (external.approvals_required, external.max_epsilon, external.allowed_recipients) == (
        2,
        Decimal("1"),
        ["external", "internal"],
    )
    assert Purpose.objects.get(name="software-testing").allow_non_private is True


def test_defaults_leave_an_existing_purpose_of_the_same_name_alone(cast):
    create(cast.steward, name="internal-analytics", max_epsilon="0.5", approvals_required=2)

    created = purposes_ensure_defaults()

    assert "internal-analytics" not in {p.name for p in created}
    assert Purpose.objects.get(name="internal-analytics").max_epsilon == Decimal("0.5")
