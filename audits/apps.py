from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig

from governance.init_steps import init_step_register

if TYPE_CHECKING:
    from governance.services.checkpoints import CheckpointKeys


def _checkpoint_keys() -> CheckpointKeys:
    # The signing module loads pyHanko and WeasyPrint: imported at the first signature, not at start-up.
    from audits.keys import checkpoint_keys

    return checkpoint_keys()


def _signing_identity_summary() -> dict[str, Any]:
    """``synthgate init``: create the platform signing key and certificate unless one is configured."""
    from audits.keys import platform_key_ensure, signing_identity

    generated = platform_key_ensure()
    identity = signing_identity()
    return {
        "subject": identity.subject,
        "fingerprint_sha256": identity.fingerprint_sha256,
        "source": f"platform key in {generated[1].parent}" if generated else "configured key",
    }


def _schedules_ensure() -> dict[str, Any]:
    """``synthgate init``: register the periodic drift audit, the reaper of audits whose worker is gone
    and the daily compaction of the audit log's checkpoint objects."""
    from audits.services import (
        audit_reaper_schedule_ensure,
        checkpoint_compaction_schedule_ensure,
        drift_beat_schedule_ensure,
    )

    drift_beat_schedule_ensure()
    audit_reaper_schedule_ensure()
    checkpoint_compaction_schedule_ensure()
    return {}


class AuditsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audits"

    def ready(self) -> None:
        # Every generation job that succeeds is audited: the one job → audit hook. The engine
        # calls it without knowing this app, so the arrow points from audits to synth_engine.
        # The audit log's checkpoints are signed with the platform key this app holds.
        # Filing asks the audit whether it can decide at the requested size (governance.planning).
        # `synthgate init` (governance) creates the signing key and this app's beat schedules.
        from audits.tasks import audit_run_after_job_enqueue
        from governance.planning import audit_planner_register
        from governance.services.checkpoints import checkpoint_keys_register
        from synth_engine.hooks import job_succeeded_hook_register

        job_succeeded_hook_register(audit_run_after_job_enqueue)
        checkpoint_keys_register(_checkpoint_keys)
        audit_planner_register(_Planner())
        init_step_register("signing", _signing_identity_summary)
        init_step_register("audit_schedules", _schedules_ensure)


class _Planner:
    """Governance's questions to the audit (governance.planning), answered by audits.outlook;
    imported on first use, so that starting Django does not load the audit metrics."""

    def require_decidable(self, **fields: Any) -> None:
        from audits.outlook import audit_power_require

        audit_power_require(**fields)

    def outlook(self, **fields: Any) -> dict[str, Any]:
        from audits.outlook import request_outlook

        return request_outlook(**fields).to_dict()
