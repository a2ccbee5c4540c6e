"""Which channel an action came through (api, web, cli, worker), for the audit log.

Boundaries set it once (the CLI at start-up, tasks in their body); services read it
when they write an AuditEvent, so no service needs a ``channel`` argument.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_channel: ContextVar[str] = ContextVar("synthgate_channel", default="api")


def current_channel() -> str:
    return _channel.get()


@contextlib.contextmanager
def channel(name: str) -> Iterator[None]:
    token = _channel.set(name)
    try:
        yield
    finally:
        _channel.reset(token)
