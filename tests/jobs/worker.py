"""Start a real Celery worker (a subprocess) against this machine's Redis for a test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection
from kombu import pools

REPO = Path(__file__).resolve().parents[2]


def broker_url() -> str:
    url = os.environ.get("SYNTHGATE_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"no Redis at {url}: {error}")
    return url


def database_url() -> str:
    """This test's connection as a URL: on PostgreSQL the application role's (tests/database.py)."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user, host, port = db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


@contextmanager
def celery_worker(
    *, extra_env: dict[str, str] | None = None, kill_on_exit: bool = False, concurrency: int = 1
) -> Iterator[subprocess.Popen]:
    """A worker on a queue of its own, sharing this test's database and data directory.

    The test process's Celery app is switched from in-process (eager) to the same broker
    and queue for the duration, and switched back afterwards. ``kill_on_exit`` ends the worker
    with SIGKILL instead of a warm shutdown that waits for the task in hand.
    """
    from config.celery import app

    url, queue = broker_url(), f"synthgate-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SYNTHGATE_DATA_DIR": str(settings.DATA_DIR),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log = open(Path(settings.DATA_DIR) / f"worker-{queue}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")}
    app.conf.update(broker_url=url, task_always_eager=False, task_default_queue=queue)
    _reset_connections(app)
    try:
        _wait_ready(process, Path(log.name))
        yield process
    finally:
        app.conf.update(
            broker_url=saved["broker_url"],
            task_always_eager=saved["task_always_eager"],
            task_default_queue=saved["task_default_queue"],
        )
        _reset_connections(app)
        if kill_on_exit:
            worker_kill(process)
        _stop(process)
        log.close()


def _reset_connections(app) -> None:
    """Drop pooled broker connections so the next use connects to the current broker URL."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


def _wait_ready(process: subprocess.Popen, log_path: Path, timeout_seconds: float = 60) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited early:\n{log_path.read_text()}")
        if "ready." in log_path.read_text():
            return
        time.sleep(0.2)
    raise RuntimeError(f"the worker did not become ready:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


def worker_kill(process: subprocess.Popen) -> None:
    """SIGKILL the whole worker, parent and pool children, as a lost machine would."""
    if process.poll() is not None:
        return
    for child in psutil.Process(process.pid).children(recursive=True):
        child.kill()
    process.kill()
    process.wait()


def pool_children(process: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)
