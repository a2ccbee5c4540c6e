"""`synthgate job run|watch|show|list|cancel`: generation jobs from the command line."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import User

from core.cli import CliError, SynthgateCommand
from core.cli_format import table
from synth_engine.apis import JobOutputSerializer
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.selectors import job_get, job_list
from synth_engine.services import generation_job_cancel, generation_job_start

LIST_COLUMNS = ("id", "request", "generator", "status", "phase", "progress", "created_at")
BAR_WIDTH = 40


class Command(SynthgateCommand):
    help = "Start, watch, show, list and cancel generation jobs."

    def add_arguments(self, parser: Any) -> None:
        actions = self.add_subcommands(parser)
        run = self.add_subcommand(
            actions,
            "run",
            "start the generation job of an approved request "
            "(in-process on the embedded default, queued when a broker is configured)",
        )
        run.add_argument("request_id", type=int, metavar="REQUEST_ID")
        run.add_argument("--no-watch", action="store_true", help="return at once instead of showing progress")
        watch = self.add_subcommand(actions, "watch", "show a job's progress bar until it ends")
        watch.add_argument("job_id", type=int, metavar="JOB_ID")
        watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
        show = self.add_subcommand(actions, "show", "a job's status, timings, memory and privacy spent")
        show.add_argument("job_id", type=int, metavar="JOB_ID")
        self.add_subcommand(actions, "list", "jobs you may see")
        cancel = self.add_subcommand(actions, "cancel", "cancel a queued job, or stop a running one")
        cancel.add_argument("job_id", type=int, metavar="JOB_ID")

    def handle_run(self, actor: User, options: dict[str, Any]) -> None:
        # An in-process job logs its failure with a traceback; show it only with --traceback.
        with _failure_log_quiet(not options.get("traceback")):
            job = generation_job_start(actor=actor, request_id=options["request_id"])
        job.refresh_from_db()
        if not job.is_terminal and not options["no_watch"] and not self.json_output:
            job = self._watch(actor, job.pk, interval=0.5)
        if job.status == JobStatus.FAILED:
            raise _job_failed(job)
        self._show(job)

    def handle_watch(self, actor: User, options: dict[str, Any]) -> None:
        job = self._watch(actor, options["job_id"], interval=options["interval"])
        self._show(job)

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        self._show(job_get(user=actor, job_id=options["job_id"]))

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        rows = JobOutputSerializer(job_list(user=actor), many=True).data
        self.emit(rows, lambda: table(LIST_COLUMNS, [[row[c] for c in LIST_COLUMNS] for row in rows]))

    def handle_cancel(self, actor: User, options: dict[str, Any]) -> None:
        self._show(generation_job_cancel(actor=actor, job_id=options["job_id"]))

    def _watch(self, actor: User, job_id: int, *, interval: float) -> GenerationJob:
        job = job_get(user=actor, job_id=job_id)
        while not job.is_terminal:
            self._bar(job)
            time.sleep(interval)
            job.refresh_from_db()
        self._bar(job)
        if not self.json_output:
            self.stdout.write("")
        return job

    def _bar(self, job: GenerationJob) -> None:
        if self.json_output:
            return
        filled = BAR_WIDTH * job.progress // 100
        line = f"\rjob #{job.pk} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {job.progress:3d}% {job.phase:<10}"
        self.stdout.write(line, ending="")
        flush = getattr(self.stdout, "flush", None) or sys.stdout.flush
        flush()

    def _show(self, job: GenerationJob) -> None:
        data = JobOutputSerializer(job).data
        spent = job.privacy_spent or {}
        lines = [
            f"job #{job.pk} for request #{job.request_id}: {job.generator} — {job.status} ({job.phase}, "
            f"{job.progress}%)",
            f"seed policy: {job.seed_policy}" + (f" (seed {job.seed})" if job.seed is not None else ""),
            f"privacy spent: ε={spent.get('epsilon')}, δ={spent.get('delta')} ({spent.get('accountant', '-')})",
            f"timings (s): {job.timings or '-'}",
            f"peak memory: {job.peak_memory_bytes / 2**20:.0f} MiB" if job.peak_memory_bytes else "peak memory: -",
        ]
        if job.output_version_id:
            lines.append(
                f"synthetic version: {job.output_version} ({job.output_version.n_rows:,} rows, "
                f"sha256 {job.output_version.content_hash})"
            )
        if job.warnings:
            lines.append("warnings: " + "; ".join(job.warnings))
        if job.error:
            lines.append(f"error: {job.error}")
        self.emit(data, "\n".join(lines))


def _job_failed(job: GenerationJob) -> CliError:
    """One line: which job failed, what the ledger charged for it, and why."""
    reason = (job.error or "no reason recorded").strip().splitlines()[0]
    spent = job.privacy_spent or {}
    charged = f"after spending ε={spent.get('epsilon')}, δ={spent.get('delta')}" if spent else "before any spend"
    return CliError(
        f"Job #{job.pk} failed {charged}: {reason}",
        code="job_failed",
        extra={"job": job.pk, "request": job.request_id, "privacy_spent": spent},
        returncode=1,
    )


@contextlib.contextmanager
def _failure_log_quiet(quiet: bool) -> Iterator[None]:
    service_logger = logging.getLogger("synth_engine.services")
    previous = service_logger.disabled
    service_logger.disabled = quiet or previous
    try:
        yield
    finally:
        service_logger.disabled = previous
