"""The application's one error hierarchy. Services raise these; boundaries translate them.

Each error has a stable ``code``, a human ``message``, ``extra`` data a client can act on,
and the HTTP ``status`` the API answers with. The CLI exits with status 2 on any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ApplicationError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if code is not None:
            self.code = code


def failure_reason(error: BaseException, *, stated: tuple[type[BaseException], ...] = ()) -> str:
    """The one line a job or an audit records as the reason it failed, for everyone who reads it.

    An :class:`ApplicationError` gives its ``message``; an error of one of the ``stated`` types
    (errors whose text this code base writes for its users, e.g. the generators' refusals) gives
    its text. Any other exception gives only its class: its text is a library's, and may quote a
    value of the real rows (pandas' "could not convert string to float: '…'"), which a requester
    must not read. The whole error stays in the worker's log, for operators.
    """
    if isinstance(error, ApplicationError):
        message = error.message
    elif isinstance(error, stated):
        message = str(error)
    else:
        return f"an internal error ({type(error).__name__}) stopped it; the details are in the worker's log"
    return (message.strip().splitlines() or [type(error).__name__])[0]


class ValidationError(ApplicationError):
    """The input has the wrong shape or value."""

    code = "invalid"
    status = 400


def errors_combined(errors: list[ValidationError]) -> ValidationError:
    """One error naming every mistake found: each message, the first's field, and all in ``extra["errors"]``.

    A form can then show every mistake next to its field at once (``extra["errors"]`` lists
    ``{"field", "message", "code"}``, and ``column`` when the mistake names one of a table's
    columns), and an API client reads them all from one answer.
    """
    if len(errors) == 1:
        return errors[0]
    first = errors[0]
    listed = [
        {
            "field": error.extra.get("field"),
            "message": error.message,
            "code": error.code,
            **({"column": error.extra["column"]} if "column" in error.extra else {}),
        }
        for error in errors
    ]
    return ValidationError(" ".join(error.message for error in errors), extra={**first.extra, "errors": listed})


def error_collected(errors: list[ValidationError], check: Callable[[], T]) -> T | None:
    """``check()``'s value, or None with its :class:`ValidationError` appended to ``errors``.

    Lets a service run every independent check of a form and then raise them together
    (:func:`errors_combined`) instead of stopping at the first.
    """
    try:
        return check()
    except ValidationError as error:
        errors.append(error)
        return None


class NotFoundError(ApplicationError):
    """The object does not exist, or the user may not see it (both answer 404)."""

    code = "not_found"
    status = 404


class PermissionDeniedError(ApplicationError):
    """The user's role does not allow the action."""

    code = "permission_denied"
    status = 403


class ConflictError(ApplicationError):
    """The action conflicts with the current state of stored objects."""

    code = "conflict"
    status = 409


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"


class BudgetExhaustedError(ConflictError):
    code = "budget_exhausted"


class FourEyesError(PermissionDeniedError):
    code = "four_eyes"


class DatasetFormatError(ValidationError):
    """An uploaded table is malformed (encoding, shape, types, schema)."""

    code = "invalid_dataset"


class ServiceUnavailableError(ApplicationError):
    """A service the action needs (the task broker, the database) cannot be reached; try again later."""

    code = "service_unavailable"
    status = 503


class TooManyAttemptsError(ApplicationError):
    """Too many failed attempts (logins); retry after the lockout."""

    code = "too_many_attempts"
    status = 429
