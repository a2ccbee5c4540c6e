from typing import Any

from django.apps import AppConfig


class AuditsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audits"

    def ready(self) -> None:
        from governance.planning import audit_planner_register

        audit_planner_register(_Planner())


class _Planner:
    """Governance's questions to the audit (governance.planning), answered by audits.outlook;
    imported on first use, so that starting Django does not load the audit metrics."""

    def require_decidable(self, **fields: Any) -> None:
        from audits.outlook import audit_power_require

        audit_power_require(**fields)

    def outlook(self, **fields: Any) -> dict[str, Any]:
        from audits.outlook import request_outlook

        return request_outlook(**fields).to_dict()
