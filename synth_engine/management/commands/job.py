"""`synthgate job run|watch|show|list|cancel`: generation jobs from the command line."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser
from tqdm import tqdm

from core.amounts import DELTA_PLACES, EPSILON_PLACES, amount_text
from core.cli import CliError, SynthgateCommand
from core.cli_format import table
from governance.models import DataRequest, RequestState
from synth_engine.apis import JobOutputSerializer
from synth_engine.background import job_start, runs_in_process
from synth_engine.models import GenerationJob, JobStatus
from synth_engine.selectors import job_get, job_list
from synth_engine.services import generation_job_cancel

LIST_COLUMNS = ("id", "request", "generator", "status", "phase", "progress", "created_at")


class Command(SynthgateCommand):
    help = "Start, watch, show, list and cancel generation jobs."
    examples = (
        "synthgate job run 12 --as alice",
        "synthgate job watch 5",
        "synthgate job show 5",
        "synthgate job list",
        "synthgate job cancel 5",
    )

    def add_arguments(self, parser: CommandParser) -> None:
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
        watch = not options["no_watch"] and not self.json_output
        # An in-process job logs its failure with a traceback; show it only with --traceback.
        # On the embedded default the job and its audit run in this process: in a thread, so the
        # bars can move while they work. With a broker they run on a worker and we only poll.
        with _failure_log_quiet(not options.get("traceback")):
            job = job_start(
                actor=actor,
                request_id=options["request_id"],
                background=watch and runs_in_process(),
                channel_name="cli",
            )
            job.refresh_from_db()
            if watch:
                job = self._watch(actor, job.pk, interval=0.5)
        self._show(job, actor)
        self._outcome(job)

    def handle_watch(self, actor: User, options: dict[str, Any]) -> None:
        job = self._watch(actor, options["job_id"], interval=options["interval"])
        self._show(job, actor)
        self._outcome(job)

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        self._show(job_get(user=actor, job_id=options["job_id"]), actor)

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        rows = JobOutputSerializer(job_list(user=actor), many=True, context={"viewer": actor}).data
        self.emit(rows, lambda: table(LIST_COLUMNS, [[row[c] for c in LIST_COLUMNS] for row in rows]))

    def handle_cancel(self, actor: User, options: dict[str, Any]) -> None:
        self._show(generation_job_cancel(actor=actor, job_id=options["job_id"]), actor)

    def _watch(self, actor: User, job_id: int, *, interval: float) -> GenerationJob:
        """A bar for the job (its phase and per cent), then one for the audit that follows it."""
        job = job_get(user=actor, job_id=job_id)
        with tqdm(total=100, desc=f"job #{job.pk}", unit="%", file=sys.stderr, disable=None, leave=True) as bar:
            while True:
                bar.set_postfix_str(job.phase, refresh=False)
                bar.update(job.progress - bar.n)
                if job.is_terminal:
                    break
                time.sleep(interval)
                job.refresh_from_db()
        if job.status != JobStatus.SUCCEEDED:
            return job
        request = job.request
        with tqdm(
            desc=f"audit of request #{request.pk}",
            bar_format="{desc}: {elapsed} {postfix}",
            file=sys.stderr,
            disable=None,
        ) as bar:
            while True:
                request.refresh_from_db(fields=["state"])
                bar.set_postfix_str(request.state)
                if request.state != RequestState.AUDITING:
                    break
                time.sleep(interval)
        return job

    def _outcome(self, job: GenerationJob) -> None:
        """End with the request's state and the next step; a failed job is a failed command."""
        request = job.request
        request.refresh_from_db()
        if not self.json_output:
            self.stdout.write(f"\nRequest #{request.pk} is {request.state}. {next_step(request, job)}")
        if job.status == JobStatus.FAILED:
            raise _job_failed(job)
        if request.state == RequestState.FAILED:
            raise CliError(
                f"Request #{request.pk} failed after its job: see `synthgate request show {request.pk}`.",
                code="request_failed",
                extra={"job": job.pk, "request": request.pk, "state": request.state},
                returncode=1,
            )

    def _show(self, job: GenerationJob, actor: User) -> None:
        data = JobOutputSerializer(job, context={"viewer": actor}).data
        spent = job.privacy_spent or {}
        lines = [
            f"job #{job.pk} for request #{job.request_id}: {job.generator} — {job.status} ({job.phase}, "
            f"{job.progress}%)",
            f"seed policy: {job.seed_policy}" + (f" (seed {job.seed})" if job.seed is not None else ""),
            f"privacy spent: ε={amount_text(spent.get('epsilon'), places=EPSILON_PLACES)}, "
            f"δ={amount_text(spent.get('delta'), places=DELTA_PLACES)} ({spent.get('accountant', '-')})",
            f"timings (s): {data['timings'] or '-'}",
            f"peak memory: {data['peak_memory_bytes'] / 2**20:.0f} MiB"
            if data["peak_memory_bytes"]
            else "peak memory: -",
        ]
        if job.output_version is not None:
            lines.append(
                f"synthetic version: {job.output_version} ({job.output_version.n_rows:,} rows, "
                f"sha256 {job.output_version.content_hash})"
            )
        if job.warnings:
            lines.append("warnings: " + "; ".join(job.warnings))
        if job.error:
            lines.append(f"error: {job.error}")
        self.emit(data, "\n".join(lines))


def next_step(request: DataRequest, job: GenerationJob) -> str:
    """What the person can do now, as the command that does it."""
    blocked_by = request.audit_runs.order_by("-pk").values_list("status", flat=True).first()
    steps: dict[str, str] = {
        RequestState.READY: f"Next: a steward or approver releases it: `synthgate release {request.pk}`.",
        RequestState.BLOCKED: (
            f"Next: the audit failed; a second approver may accept the risk with a reason: "
            f'`synthgate audit accept-risk {request.pk} --reason "..."` (see `synthgate audit list --request '
            f"{request.pk}`), or the requester withdraws it."
            if blocked_by == "failed"
            else f"Next: the audit was inconclusive, so it cannot be released; see `synthgate audit list "
            f"--request {request.pk}` and file a new request."
        ),
        RequestState.FAILED: f"Next: read the error (`synthgate job show {job.pk}`), then file a new request.",
        RequestState.GENERATING: f"Next: follow it with `synthgate job watch {job.pk}`.",
        RequestState.AUDITING: f"Next: follow it with `synthgate request show {request.pk}`.",
        RequestState.APPROVED: f"Next: follow it with `synthgate job watch {job.pk}`.",
    }
    return steps.get(request.state, f"See `synthgate request show {request.pk}`.")


def _job_failed(job: GenerationJob) -> CliError:
    """One line: which job failed, what the ledger charged for it, and why."""
    reason = (job.error or "no reason recorded").strip().splitlines()[0]
    spent = job.privacy_spent or {}
    charged = (
        f"after spending ε={amount_text(spent.get('epsilon'), places=EPSILON_PLACES)}, "
        f"δ={amount_text(spent.get('delta'), places=DELTA_PLACES)}"
        if spent
        else "before any spend"
    )
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
