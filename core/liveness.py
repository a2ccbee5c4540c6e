"""Liveness of long work (generation jobs, audit runs): heartbeats and a way back to the database.

A worker that runs a job or an audit writes ``heartbeat_at`` on its row every
``SYNTHGATE_HEARTBEAT_SECONDS`` from a small thread with its own connection, so a job that trains
for an hour without touching the database still shows it is alive. When the whole worker dies
the heartbeat stops, and the beat-scheduled reapers end the row (docs/faults.md).

When PostgreSQL restarts under a running job, the connection the job holds is dead: the next
query fails, and so would every later query on it. ``database_reconnect`` drops it and waits,
with backoff, for a fresh one, so the job can be ended (or sent back to the queue) on a
connection that works.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

CONNECTION_LOST_ERRORS = (OperationalError, InterfaceError)


def connection_lost(error: BaseException) -> bool:
    """True when ``error`` (or its cause) means the database connection is gone, not a bad query."""
    current: BaseException | None = error
    while current is not None:  # walk the chain of causes
        if isinstance(current, CONNECTION_LOST_ERRORS):
            return True
        current = current.__cause__ or current.__context__
    return False


def database_reconnect(*, timeout_seconds: float | None = None) -> bool:
    """Drop this thread's connection and wait (0.5 s, doubling to 5 s) until a new one answers."""
    budget = settings.SYNTHGATE_DB_RECONNECT_SECONDS if timeout_seconds is None else timeout_seconds
    deadline, delay = time.monotonic() + budget, 0.5
    while True:
        connection.close()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except CONNECTION_LOST_ERRORS:
            if time.monotonic() + delay > deadline:
                connection.close()
                return False
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def heartbeat_is_stale(beat: datetime | None, *, now: datetime | None = None) -> bool:
    """True when a heartbeat (or start time) is older than the timeout: its worker is gone."""
    if beat is None:
        return True
    elapsed = (now or timezone.now()) - beat
    return elapsed.total_seconds() > settings.SYNTHGATE_HEARTBEAT_TIMEOUT_SECONDS


@contextmanager
def heartbeat(model: type[models.Model], pk: int) -> Iterator[None]:
    """Write ``heartbeat_at`` on one row every SYNTHGATE_HEARTBEAT_SECONDS while the block runs."""
    interval = settings.SYNTHGATE_HEARTBEAT_SECONDS
    if interval <= 0:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(model, pk, interval, stop), name=f"heartbeat-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)


def _beat_once(model: type[models.Model], pk: int) -> None:
    # A row locked by the job's own transaction (it is writing its outputs) is proof of life:
    # skip the beat rather than queue behind that lock.
    with transaction.atomic():
        if model._default_manager.select_for_update(skip_locked=True).filter(pk=pk).values_list("pk").first():
            model._default_manager.filter(pk=pk).update(heartbeat_at=timezone.now())


def row_locked_by_live_work(model: type[models.Model], pk: int) -> bool:
    """True when another transaction holds the row's lock: the work on it is alive, whatever its heartbeat."""
    if connection.vendor != "postgresql":
        return False
    with transaction.atomic():
        return (
            model._default_manager.select_for_update(skip_locked=True).filter(pk=pk).values_list("pk").first() is None
        )


def _beat(model: type[models.Model], pk: int, interval: float, stop: threading.Event) -> None:
    try:
        while not stop.wait(interval):
            try:
                _beat_once(model, pk)
            except DatabaseError:  # the database is away: beat again on a fresh connection
                logger.warning("heartbeat for %s #%s missed: database unavailable", model.__name__, pk)
                connection.close()
    finally:
        connection.close()
