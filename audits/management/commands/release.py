"""`synthgate release [create] REQUEST_ID | list | show | download | revoke`: the release gate.

`synthgate release 12 --as approver` is short for `synthgate release create 12 --as approver`.
A refusal names every unmet condition.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from audits.apis.releases import ReleaseDetailOutputSerializer, ReleaseOutputSerializer
from audits.models import DownloadKind, Release
from audits.selectors import release_get, release_list
from audits.services import release_create, release_download, release_revoke
from core.cli import CliError, SynthgateCommand, SynthgateParser
from core.cli_format import fields, table, version_ref
from core.times import time_text
from governance.output_formats import SUFFIXES, key_format

LIST_COLUMNS = (
    "id",
    "request",
    "version",
    "released_by",
    "created_at",
    "expires_at",
    "revoked_at",
    "active",
    "despite failed checks",
)


class ReleaseParser(SynthgateParser):
    """Reads a bare request id as the `create` action: `release 12` is `release create 12`."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # argparse overloads it
        args = list(args or [])
        if args and args[0].isdigit():
            args.insert(0, "create")
        return super().parse_args(args, namespace)


class Command(SynthgateCommand):
    help = "Release a ready request (`release REQUEST_ID`), list, show, download or revoke releases."
    examples = (
        "synthgate release 12 --as bob",
        "synthgate release create 12 --as bob",
        "synthgate release list",
        "synthgate release show 4",
        "synthgate release download 4 --kind data --output synthetic.csv",
        'synthgate release revoke 4 --reason "source withdrawn" --as steward',
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = ReleaseParser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        actions = self.add_subcommands(parser)
        create = self.add_subcommand(actions, "create", "release a ready request (also: `release REQUEST_ID`)")
        create.add_argument("request_id", type=int, metavar="REQUEST_ID")
        self.add_subcommand(actions, "list", "releases of the requests you may see, newest first")
        show = self.add_subcommand(actions, "show", "one release and its download log")
        show.add_argument("release_id", type=int, metavar="ID")
        download = self.add_subcommand(actions, "download", "copy the synthetic data or the datasheet (logged)")
        download.add_argument("release_id", type=int, metavar="ID")
        download.add_argument(
            "--kind",
            choices=DownloadKind.values,
            required=True,
            help="the synthetic CSV or its signed PDF datasheet",
        )
        download.add_argument("--output", metavar="PATH", help="file or folder (default: the current folder)")
        download.add_argument("--clobber", action="store_true", help="overwrite the file at PATH if it exists")
        revoke = self.add_subcommand(actions, "revoke", "stop every further download")
        revoke.add_argument("release_id", type=int, metavar="ID")
        revoke.add_argument("--reason", required=True)

    def handle_create(self, actor: User, options: dict[str, Any]) -> None:
        release = release_create(actor=actor, request_id=options["request_id"])
        self.show_release(
            actor,
            release.pk,
            headline=f"Request #{release.request_id} released as release "
            f"#{release.pk}, until {release.expires_at:%Y-%m-%d %H:%M} UTC.",
        )

    def handle_list(self, actor: User, options: dict[str, Any]) -> None:
        releases = list(release_list(user=actor))
        rows = ReleaseOutputSerializer(releases, many=True, context={"user": actor}).data
        self.emit(
            rows,
            lambda: table(
                LIST_COLUMNS,
                [
                    (
                        release.pk,
                        release.request_id,
                        version_ref(release.version_id, release.version.number),
                        release.released_by.username,
                        release.created_at,
                        release.expires_at,
                        release.revoked_at,
                        row["active"],
                        "yes" if row["despite_failed_checks"] else "",
                    )
                    for release, row in zip(releases, rows, strict=True)
                ],
            ),
        )

    def handle_show(self, actor: User, options: dict[str, Any]) -> None:
        self.show_release(actor, options["release_id"])

    def handle_download(self, actor: User, options: dict[str, Any]) -> None:
        kind = options["kind"]
        suffix = ".csv"
        if kind == DownloadKind.DATA:  # the release's stored form names the default file
            release = release_get(user=actor, release_id=options["release_id"])
            suffix = SUFFIXES[key_format(release.version.storage_key)]
        target = _target(options["output"], release_id=options["release_id"], kind=kind, suffix=suffix)
        if target.exists() and not options["clobber"]:
            # Refused before the download is logged: nothing was read, nothing is overwritten.
            raise CliError(
                f"{target} exists; pass --clobber to overwrite it, or choose another --output.",
                code="file_exists",
                extra={"path": str(target)},
            )
        source = release_download(actor=actor, release_id=options["release_id"], kind=kind)
        try:
            with source.open("rb") as stream, target.open("wb") as out:
                shutil.copyfileobj(stream, out)
        except OSError as error:
            raise CliError(f"Cannot write {target}: {error.strerror}.", extra={"path": str(target)}) from error
        self.emit(
            {"release": options["release_id"], "kind": kind, "path": str(target)},
            f"Release #{options['release_id']} {kind} saved to {target} (download logged).",
        )

    def handle_revoke(self, actor: User, options: dict[str, Any]) -> None:
        release = release_revoke(actor=actor, release_id=options["release_id"], reason=options["reason"])
        self.show_release(actor, release.pk, headline=f"Release #{release.pk} revoked: no further downloads.")

    def show_release(self, actor: User, release_id: int, *, headline: str = "") -> None:
        release = release_get(user=actor, release_id=release_id)
        data = ReleaseDetailOutputSerializer(release, context={"user": actor}).data
        self.emit(data, lambda: release_text(release, data, headline))


def release_text(release: Release, data: dict[str, Any], headline: str) -> str:
    state = "active" if data["active"] else ("revoked" if release.revoked_at else "expired")
    pairs = [
        ("release", f"#{release.pk} ({state})"),
        ("request", release.request_id),
        ("version", f"#{release.version_id} (v{release.version.number}, {release.version.n_rows:,} rows)"),
        ("version hash", release.version.content_hash),
        ("audit run", release.audit_run_id),
        ("datasheet sha256", release.datasheet.sha256),
        ("released by", release.released_by.username),
        ("released at", release.created_at),
        ("expires at", release.expires_at),
    ]
    if release.revoked_at:
        pairs += [
            ("revoked at", release.revoked_at),
            ("revoked by", data["revoked_by"]),
            ("revoke reason", release.revoke_reason),
        ]
    downloads = table(
        ("user", "kind", "channel", "created_at"),
        [
            (download.user.username, download.kind, download.channel, download.created_at)
            for download in release.downloads.select_related("user")
        ],
    )
    exceptions = []
    if data["despite_failed_checks"]:
        exceptions = ["", "Exception: released despite failed checks"] + [
            f"  {e['check']} {'failed' if e['value'] is None else e['value']} against the limit {e['threshold']}, "
            f"accepted by {e['approver']} "
            f"at {time_text(e['accepted_at'])}: {e['reason']}"
            for e in data["exceptions"]
        ]
    return "\n".join(
        [
            *([headline, ""] if headline else []),
            fields(pairs),
            *exceptions,
            "",
            f"Downloads ({len(data['downloads'])})",
            downloads,
        ]
    )


def _target(output: str | None, *, release_id: int, kind: str, suffix: str = ".csv") -> Path:
    """Where to save: the given file, or a default name in the given (or current) folder
    (``suffix``: the synthetic table's stored form, ``.csv`` or ``.parquet``)."""
    name = f"release-{release_id}-" + ("datasheet.pdf" if kind == DownloadKind.DATASHEET else f"synthetic{suffix}")
    target = Path(output) if output else Path.cwd() / name
    if target.is_dir():
        target = target / name
    if not target.parent.is_dir():
        raise CliError(
            f"No such folder: {target.parent} (given with --output).",
            code="not_found",
            extra={"path": str(target.parent)},
        )
    return target
