"""What other apps may attach to the engine without the engine importing them.

The audits app registers the audit that follows every successful job (audits.apps), so the
arrow points one way: audits → synth_engine, never back.
"""

from __future__ import annotations

from collections.abc import Callable

# Called with a job's id once it has succeeded and its transaction has committed.
JobSucceededHook = Callable[[int], None]
_job_succeeded_hooks: list[JobSucceededHook] = []


def job_succeeded_hook_register(hook: JobSucceededHook) -> None:
    """Run ``hook(job_id)`` after every job that succeeds (once per hook, in registration order)."""
    if hook not in _job_succeeded_hooks:
        _job_succeeded_hooks.append(hook)


def job_succeeded_hooks() -> tuple[JobSucceededHook, ...]:
    return tuple(_job_succeeded_hooks)
