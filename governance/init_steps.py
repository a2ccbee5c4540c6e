"""What the apps above governance add to ``synthgate init`` without governance importing them.

``init`` lives in governance, the lowest app with commands, but the platform signing key and the
beat schedules belong to the apps above it (audits, synth_engine). Each registers its step in its
``AppConfig.ready``; ``init`` runs them, in registration order (the order of INSTALLED_APPS), after
migrating and creating the roles and default purposes. A step returns what ``init`` reports under
its name (empty for nothing to report).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

InitStep = Callable[[], dict[str, Any]]
_steps: dict[str, InitStep] = {}


def init_step_register(name: str, step: InitStep) -> None:
    """Run ``step()`` at every ``synthgate init`` (it must be idempotent); one step per name."""
    _steps[name] = step


def init_steps() -> tuple[tuple[str, InitStep], ...]:
    return tuple(_steps.items())
