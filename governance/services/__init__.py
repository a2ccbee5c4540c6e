"""Every write and business rule of the governance app. Import from here.

Names load on first use (``core.lazy``): registering a dataset needs pandas and checkpoints need
pyHanko, which Django's start-up (the apps' ready hooks) and read-only commands must not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from governance.ledger import BudgetBalance
    from governance.selectors import budget_balance
    from governance.services.audit_log import ChainVerification, audit_event_record, audit_log_verify
    from governance.services.budget import (
        budget_release,
        budget_reservation,
        budget_reserve,
        budget_spend,
        ledger_amount,
        version_public_rows,
        version_row_estimate,
    )
    from governance.services.datasets import (
        RegistrationResult,
        dataset_reference_register,
        dataset_register,
        dataset_register_fields_check,
        dataset_schema_declarations_check,
        dataset_schema_declare,
        dataset_schema_declare_columns,
        dataset_schema_suggestions,
        dataset_schema_types_accept,
        dataset_schema_types_repropose,
        dataset_version_store,
        dataset_version_store_streamed,
        files_removed_on_error,
        ingest_limits,
    )
    from governance.services.outlook import access_request_outlook
    from governance.services.purposes import purpose_create, purpose_fields_check, purposes_ensure_defaults
    from governance.services.requests import (
        TRANSITIONS,
        access_request_approve,
        access_request_create,
        access_request_fields_check,
        access_request_lock,
        access_request_reject,
        access_request_revalidate,
        access_request_submit,
        access_request_withdraw,
        allowed_transitions,
        request_transition,
    )
    from governance.services.tokens import api_token_issue, api_token_list, api_token_revoke, api_token_rotate
    from governance.services.users import (
        password_checked,
        roles_ensure,
        user_create,
        user_roles_set,
        username_checked,
        username_normalise,
    )

_HOMES = {
    "access_request_approve": "governance.services.requests",
    "access_request_create": "governance.services.requests",
    "access_request_fields_check": "governance.services.requests",
    "access_request_lock": "governance.services.requests",
    "access_request_outlook": "governance.services.outlook",
    "access_request_reject": "governance.services.requests",
    "access_request_revalidate": "governance.services.requests",
    "access_request_submit": "governance.services.requests",
    "access_request_withdraw": "governance.services.requests",
    "allowed_transitions": "governance.services.requests",
    "api_token_issue": "governance.services.tokens",
    "api_token_list": "governance.services.tokens",
    "api_token_revoke": "governance.services.tokens",
    "api_token_rotate": "governance.services.tokens",
    "audit_event_record": "governance.services.audit_log",
    "audit_log_verify": "governance.services.audit_log",
    "budget_balance": "governance.selectors",
    "budget_release": "governance.services.budget",
    "budget_reservation": "governance.services.budget",
    "budget_reserve": "governance.services.budget",
    "budget_spend": "governance.services.budget",
    "BudgetBalance": "governance.ledger",
    "ChainVerification": "governance.services.audit_log",
    "dataset_reference_register": "governance.services.datasets",
    "dataset_register": "governance.services.datasets",
    "dataset_register_fields_check": "governance.services.datasets",
    "dataset_schema_declare": "governance.services.datasets",
    "dataset_schema_declarations_check": "governance.services.datasets",
    "dataset_schema_declare_columns": "governance.services.datasets",
    "dataset_schema_suggestions": "governance.services.datasets",
    "dataset_schema_types_accept": "governance.services.datasets",
    "dataset_schema_types_repropose": "governance.services.datasets",
    "dataset_version_store": "governance.services.datasets",
    "dataset_version_store_streamed": "governance.services.datasets",
    "files_removed_on_error": "governance.services.datasets",
    "ingest_limits": "governance.services.datasets",
    "ledger_amount": "governance.services.budget",
    "password_checked": "governance.services.users",
    "purpose_create": "governance.services.purposes",
    "purpose_fields_check": "governance.services.purposes",
    "purposes_ensure_defaults": "governance.services.purposes",
    "RegistrationResult": "governance.services.datasets",
    "request_transition": "governance.services.requests",
    "roles_ensure": "governance.services.users",
    "TRANSITIONS": "governance.services.requests",
    "user_create": "governance.services.users",
    "user_roles_set": "governance.services.users",
    "username_checked": "governance.services.users",
    "username_normalise": "governance.services.users",
    "version_public_rows": "governance.services.budget",
    "version_row_estimate": "governance.services.budget",
}

__all__ = [
    "api_token_issue",
    "api_token_list",
    "api_token_revoke",
    "api_token_rotate",
    "password_checked",
    "username_checked",
    "username_normalise",
    "TRANSITIONS",
    "BudgetBalance",
    "ChainVerification",
    "RegistrationResult",
    "access_request_approve",
    "access_request_lock",
    "access_request_outlook",
    "access_request_create",
    "access_request_fields_check",
    "access_request_reject",
    "access_request_revalidate",
    "access_request_submit",
    "access_request_withdraw",
    "allowed_transitions",
    "audit_event_record",
    "audit_log_verify",
    "budget_balance",
    "budget_release",
    "budget_reservation",
    "budget_reserve",
    "budget_spend",
    "dataset_reference_register",
    "dataset_register",
    "dataset_register_fields_check",
    "dataset_schema_declare",
    "dataset_schema_declarations_check",
    "dataset_schema_declare_columns",
    "dataset_schema_suggestions",
    "dataset_schema_types_accept",
    "dataset_schema_types_repropose",
    "dataset_version_store",
    "dataset_version_store_streamed",
    "files_removed_on_error",
    "ingest_limits",
    "ledger_amount",
    "purpose_create",
    "purpose_fields_check",
    "purposes_ensure_defaults",
    "request_transition",
    "roles_ensure",
    "user_create",
    "user_roles_set",
    "version_public_rows",
    "version_row_estimate",
]

__getattr__ = lazy_exports(__name__, _HOMES)
