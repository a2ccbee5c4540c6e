"""Every write and business rule of the governance app. Import from here."""

from governance.ledger import BudgetBalance
from governance.selectors import budget_balance
from governance.services.audit_log import ChainVerification, audit_event_record, audit_log_verify
from governance.services.budget import (
    budget_release,
    budget_reservation,
    budget_reserve,
    budget_spend,
    ledger_amount,
)
from governance.services.datasets import (
    RegistrationResult,
    dataset_reference_register,
    dataset_register,
    dataset_register_fields_check,
    dataset_schema_declare,
    dataset_schema_declare_columns,
    dataset_version_store,
    dataset_version_store_streamed,
    files_removed_on_error,
    ingest_limits,
)
from governance.services.outlook import access_request_outlook
from governance.services.purposes import purpose_create, purposes_ensure_defaults
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
    "dataset_schema_declare_columns",
    "dataset_version_store",
    "dataset_version_store_streamed",
    "files_removed_on_error",
    "ingest_limits",
    "ledger_amount",
    "purpose_create",
    "purposes_ensure_defaults",
    "request_transition",
    "roles_ensure",
    "user_create",
    "user_roles_set",
]
