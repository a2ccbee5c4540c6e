"""A PostgreSQL cluster of the test's own (initdb + pg_ctl on a scratch directory and a free port),
so a fault test can restart the database under a running job without touching the shared one.

The cluster has the production role split: ``synthgate_owner`` owns the schema and runs the
migrations; the application and its workers connect as ``synthgate_app``, which may only INSERT
and SELECT the audit log and the ledger (governance.services.database_roles).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

OWNER, APP = "synthgate_owner", "synthgate_app"


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the server tools as the ``postgres`` user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run a scratch cluster")
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class ScratchCluster:
    directory: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *_as_server_user(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.directory / "log"),
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def init(self) -> None:
        subprocess.run(
            [
                *_as_server_user(),
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        self._ctl("-w", "start")

    def restart(self) -> None:
        """A fast restart: every open connection is terminated, as in a failover."""
        self._ctl("-w", "-m", "fast", "restart")

    def stop(self) -> None:
        self._ctl("-w", "-m", "immediate", "stop")

    def connect(self, database: str = "postgres", user: str = "postgres"):
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=user, dbname=database)
        connection.autocommit = True
        return connection

    def superuser_sql(self, statement: str, database: str = "postgres") -> None:
        connection = self.connect(database)
        try:
            connection.cursor().execute(statement)
        finally:
            connection.close()


@contextmanager
def scratch_cluster() -> Iterator[ScratchCluster]:
    # Under /tmp (not pytest's private tmp dir) so the server user can reach it when tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="synthgate-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user="postgres")
    cluster = ScratchCluster(directory=directory, port=free_port(), bin=postgres_bin())
    cluster.init()
    try:
        cluster.superuser_sql(f"CREATE ROLE {OWNER} LOGIN")
        cluster.superuser_sql(f"CREATE ROLE {APP} LOGIN")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def django_connected_to(cluster: ScratchCluster, *, database: str, user: str) -> Iterator[None]:
    """Point Django's default connection at the scratch cluster (and back afterwards)."""
    from django.db import connections

    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(
        ENGINE="django.db.backends.postgresql",
        NAME=database,
        USER=user,
        PASSWORD="",
        HOST="127.0.0.1",
        PORT=cluster.port,
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def wait_for(condition, *, timeout_seconds: float = 60, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what}")
