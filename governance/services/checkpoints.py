"""Signed checkpoints of the audit log's head, kept where the database cannot rewrite them.

After every append commits, the application signs (event id = chain length, event hash, time)
with the platform signing key and keeps it outside the database: appended as one line to
``SYNTHGATE_CHECKPOINT_PATH`` when that is set; otherwise, when ``SYNTHGATE_STORAGE_URL`` names
the artefact storage (workers on several hosts, e.g. an S3 bucket, which cannot append), written
as its own immutable object ``audit-log/checkpoints/<event>-<host>-<token>.json`` there; otherwise
appended to ``DATA_DIR/audit-log/checkpoints.jsonl``. Someone who can write the database but does not hold
the key (a DBA, the owner role, a stolen application password) can recompute hashes, but cannot
produce checkpoints: ``audit_log_verify`` compares the chain with them and names the first event
that disagrees, a cut tail, or events that no checkpoint covers (docs/tamper-evidence.md).

Objects are many small reads on a bucket (one GET an event), so :func:`checkpoints_compact` folds
the older ones into one signed *segment* object, ``audit-log/checkpoints/segment-<first>-<last>-
<host>-<token>.json``: every checkpoint's line kept byte for byte (each still verified with its own
signature and timestamp), and the platform key's signature over their digest, first and last
event and count, so a line removed from or added to a segment is noticed as an edited object.

The key lives with the audits app (``audits.keys``); it registers itself here at start-up,
so this module never imports audits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import posixpath
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from django.conf import settings

from governance.storage import VersionStorage, version_storage

if TYPE_CHECKING:
    from governance.services.timestamps import TimestampChecker

logger = logging.getLogger(__name__)
DOMAIN = "synthgate-audit-checkpoint-v1"
# Where checkpoint objects live in the artefact storage; a key names the event it checkpoints
# (zero-padded, so the keys sort by event), the host that wrote it and a random token.
CHECKPOINT_PREFIX = "audit-log/checkpoints"
_OBJECT_NAME = re.compile(r"^(\d{12})-([A-Za-z0-9._-]+)-([0-9a-f]{8})\.json$")
SEGMENT_DOMAIN = "synthgate-audit-checkpoint-segment-v1"
_SEGMENT_NAME = re.compile(r"^segment-(\d{12})-(\d{12})-([A-Za-z0-9._-]+)-([0-9a-f]{8})\.json$")


@dataclass(frozen=True)
class CheckpointKeys:
    """The key that signs checkpoints and the certificates whose signatures are accepted."""

    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    trusted: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement: the audit log had ``length`` events and the last one hashed to ``hash``."""

    length: int
    hash: str
    at: str
    signer: str
    signature: str
    # An RFC 3161 token (base64 DER) over SHA-256(payload) when a TSA is configured, else "".
    timestamp: str = ""

    def payload(self) -> bytes:
        return _payload(self.length, self.hash, self.at)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def timestamped_at(self) -> str:
        """The time the TSA's token states, ISO 8601 ("" without one)."""
        # pyHanko (seconds to import) is loaded only when a timestamp is read, fetched or checked.
        from governance.services.timestamps import timestamp_time

        stated = timestamp_time(self.timestamp) if self.timestamp else None
        return stated.isoformat() if stated else ""

    def described(self) -> dict[str, object]:
        """``to_dict()`` and the time the TSA's token states ("" without one), for reports and output."""
        return {**self.to_dict(), "timestamped_at": self.timestamped_at()}


_keys_provider: Callable[[], CheckpointKeys] | None = None


def checkpoint_keys_register(provider: Callable[[], CheckpointKeys]) -> None:
    """Set where the signing key comes from (the audits app does, at start-up)."""
    global _keys_provider
    _keys_provider = provider


def checkpoint_path() -> Path:
    """The checkpoint file (when checkpoints are kept in a file: :func:`checkpoint_storage` is None)."""
    configured = getattr(settings, "SYNTHGATE_CHECKPOINT_PATH", None)
    return Path(configured) if configured else Path(settings.DATA_DIR) / "audit-log" / "checkpoints.jsonl"


def checkpoint_storage() -> VersionStorage | None:
    """The artefact storage when each checkpoint is an object there: ``SYNTHGATE_STORAGE_URL`` set
    and no ``SYNTHGATE_CHECKPOINT_PATH``; None when checkpoints are lines of a file."""
    if getattr(settings, "SYNTHGATE_CHECKPOINT_PATH", None) or not settings.SYNTHGATE_STORAGE_URL:
        return None
    return version_storage()


def checkpoint_host() -> str:
    """This host's name as it appears in the keys of its checkpoint objects."""
    name = getattr(settings, "SYNTHGATE_HOST_NAME", None) or socket.gethostname() or "host"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]


def checkpoint_sign(*, length: int, hash: str, at: datetime | None = None) -> Checkpoint | None:
    """Sign one head and append it to the checkpoint file; None when no key is registered."""
    if _keys_provider is None:
        return None
    keys = _keys_provider()
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    payload = _payload(length, hash, moment)
    signature = _sign(keys.private_key, payload)
    checkpoint = Checkpoint(
        length=length,
        hash=hash,
        at=moment,
        signer=keys.certificate.fingerprint(hashes.SHA256()).hex(),
        signature=base64.b64encode(signature).decode("ascii"),
        timestamp=_timestamp(payload, length),
    )
    line = json.dumps(checkpoint.to_dict(), sort_keys=True, separators=(",", ":"))
    storage = checkpoint_storage()
    if storage is None:
        _append_line(checkpoint_path(), line)
    else:  # one immutable object per checkpoint: hosts never write the same key
        key = f"{CHECKPOINT_PREFIX}/{length:012d}-{checkpoint_host()}-{secrets.token_hex(4)}.json"
        storage.write_unique(key, (line + "\n").encode("utf-8"))
    return checkpoint


def _timestamp(payload: bytes, length: int) -> str:
    """The TSA's token, or "" (logged) when the TSA is down: the signed checkpoint is still written."""
    from governance.services.timestamps import timestamp_fetch

    try:
        return timestamp_fetch(payload)
    except Exception:  # a TSA outage must not leave the head unsigned
        logger.warning("No RFC 3161 timestamp for the checkpoint of audit event %s", length, exc_info=True)
        return ""


def checkpoint_sign_after_commit(*, length: int, hash: str) -> None:
    """The on-commit step of every append: a failure is logged (the tail shows as unanchored)."""
    try:
        checkpoint_sign(length=length, hash=hash)
    except Exception:  # the event is committed; verify reports the unsigned tail
        logger.exception("Could not write the signed checkpoint for audit event %s", length)


@dataclass(frozen=True)
class CheckpointRead:
    checkpoints: list[Checkpoint]
    problems: list[str]


def checkpoints_read(*, from_length: int = 0) -> CheckpointRead:
    """Every checkpoint (of event ``from_length`` or later) whose signature verifies, and a problem
    for each line or object that does not."""
    if _keys_provider is None:
        return CheckpointRead([], [])
    storage = checkpoint_storage()
    entries = _file_entries() if storage is None else _object_entries(storage, from_length)
    checking = _Checking.configured()
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    for label, named, text in entries:
        for problem, checkpoint in checking.each_verified(label, named, text, "file" if storage is None else "object"):
            if problem or checkpoint is None:
                problems.append(problem)
            elif checkpoint.length >= from_length:
                checkpoints.append(checkpoint)
    return CheckpointRead(checkpoints, problems)


def checkpoint_latest() -> Checkpoint | None:
    """The latest checkpoint that verifies (for reports and datasheets). Objects are read from the
    newest key down, a few at a time, until one verifies."""
    storage = checkpoint_storage()
    if storage is None or _keys_provider is None:
        return max(checkpoints_read().checkpoints, key=lambda checkpoint: checkpoint.length, default=None)
    checking = _Checking.configured()
    # newest first: a single checkpoint by the event its name gives, a segment by its last event
    keys = sorted(_object_keys(storage), key=_newest_event, reverse=True)
    for start in range(0, len(keys), 16):
        batch = _object_entries(storage, 0, keys[start : start + 16])
        found = [
            checkpoint
            for label, named, text in batch
            for problem, checkpoint in checking.each_verified(label, named, text, "object")
            if not problem and checkpoint is not None
        ]
        if found:
            return max(found, key=lambda checkpoint: checkpoint.length)
    return None


def _newest_event(key: str) -> int:
    """The latest event an object's name says it checkpoints (-1 for a name that is neither kind)."""
    name = posixpath.basename(key)
    segment = _SEGMENT_NAME.match(name)
    if segment:
        return int(segment.group(2))
    single = _OBJECT_NAME.match(name)
    return int(single.group(1)) if single else -1


@dataclass
class _Checking:
    """What a checkpoint is checked with: the trusted certificates and, once a token is met, the TSA's."""

    trusted: dict[str, x509.Certificate]
    timestamps: TimestampChecker | None = None

    @classmethod
    def configured(cls) -> _Checking:
        assert _keys_provider is not None
        return cls({cert.fingerprint(hashes.SHA256()).hex(): cert for cert in _keys_provider().trusted})

    def verified(self, named: int | None, text: str, kind: str) -> tuple[str, Checkpoint | None]:
        """("", the checkpoint) when ``text`` verifies (and, for an object, names the event its key
        names: ``named``), else (the problem, None)."""
        if named == -1:
            return "its name is not a checkpoint's (it was put there by hand)", None
        return self._checked(named, _parse(text, self.trusted, kind))

    def _checked(self, named: int | None, parsed: tuple[str, Checkpoint | None]) -> tuple[str, Checkpoint | None]:
        """A parsed checkpoint checked against the event its name gives and its timestamp."""
        problem, checkpoint = parsed
        if checkpoint is not None and named is not None and checkpoint.length != named:
            return (
                f"holds the signed checkpoint of event {checkpoint.length}, not of event {named} as its name says: "
                "it was moved or renamed",
                None,
            )
        if checkpoint is not None and checkpoint.timestamp:
            from governance.services.timestamps import TimestampChecker

            self.timestamps = self.timestamps or TimestampChecker.configured()
            problem = _timestamp_problem(self.timestamps, checkpoint)
        return (problem, None) if problem else ("", checkpoint)

    def each_verified(
        self, label: str, named: int | tuple[int, int] | None, text: str, kind: str
    ) -> list[tuple[str, Checkpoint | None]]:
        """(problem, checkpoint) for a line or a single object (one), or for each checkpoint of a
        segment (``named`` its first and last event), every problem prefixed with ``label``."""
        if not isinstance(named, tuple):
            problem, checkpoint = self.verified(named, text, kind)
            return [(f"{label}: {problem}" if problem else "", checkpoint)]
        problem, lines = _segment_lines(text, self.trusted, named)
        if problem:
            return [(f"{label}: {problem}", None)]
        results: list[tuple[str, Checkpoint | None]] = []
        for _, decoded in lines:  # each line parsed once, by _segment_lines
            problem, checkpoint = self._checked(None, _parsed(decoded, self.trusted, "segment"))
            results.append((f"{label}: {problem}" if problem else "", checkpoint))
        return results


def checkpoints_discard() -> None:
    """Forget every checkpoint (only for a database that is emptied on purpose, e.g. between tests)."""
    storage = checkpoint_storage()
    if storage is None:
        checkpoint_path().unlink(missing_ok=True)
    else:
        storage.remove_under(CHECKPOINT_PREFIX)


def _file_entries() -> list[tuple[str, int | tuple[int, int] | None, str]]:
    """(label, None, line) for each line of the checkpoint file."""
    path = checkpoint_path()
    if not path.exists():
        return []
    lines = enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
    return [(f"checkpoint line {number}", None, line) for number, line in lines if line.strip()]


@dataclass(frozen=True)
class Compaction:
    """What :func:`checkpoints_compact` did: the segment written (None when there was nothing to
    fold), the events of its first and last checkpoint, how many it holds, the objects removed
    and those it could not remove (a bucket under object lock: they stay, and still verify)."""

    segment: str | None
    first: int
    last: int
    checkpoints: int
    removed: int
    kept: int
    not_removed: tuple[str, ...] = ()


class CompactionRefused(Exception):
    """Some checkpoint object does not verify: nothing is folded or removed until it is reviewed."""


def checkpoints_compact(*, keep: int = 100) -> Compaction:
    """Fold every single checkpoint object but the newest ``keep`` into one signed segment, check the
    segment as written, then remove the folded objects.

    Nothing is written or removed when an object to fold does not verify
    (:class:`CompactionRefused`): a compaction must never launder an edited checkpoint into a
    signed segment, nor remove the evidence of one. Objects whose names are not a checkpoint's and
    existing segments are left as they are. A crash between the segment's write and the removals
    leaves both (the same checkpoints twice, which verify alike). Raises ``ValueError`` when
    checkpoints are kept in a file (one read already) or no key is registered."""
    storage = checkpoint_storage()
    if storage is None:
        raise ValueError(
            "Checkpoints are lines of one file here (SYNTHGATE_CHECKPOINT_PATH), read at once: nothing to compact."
        )
    if _keys_provider is None:
        raise ValueError("No signing key is registered to sign a segment.")
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (the newest checkpoints stay single objects); got {keep}.")
    singles = sorted(
        (int(match.group(1)), key)
        for key in _object_keys(storage)
        if (match := _OBJECT_NAME.match(posixpath.basename(key)))
    )
    folded = singles[: max(len(singles) - keep, 0)]
    if not folded:
        return Compaction(None, 0, 0, 0, 0, len(singles))
    read = storage.read_many([key for _, key in folded])
    checking = _Checking.configured()
    lines: list[tuple[int, str, str]] = []
    problems: list[str] = []
    for named, key in folded:
        if key not in read:
            continue  # removed since it was listed (another compaction)
        text = read[key].decode("utf-8", errors="replace").strip()
        problem, checkpoint = checking.verified(named, text, "object")
        if problem or checkpoint is None:
            problems.append(f"checkpoint {key}: {problem}")
        else:
            lines.append((checkpoint.length, key, text))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CompactionRefused(
            f"{len(problems)} checkpoint object(s) do not verify, so nothing was compacted: {shown}. "
            "Review them (`synthgate log verify`) before compacting."
        )
    if not lines:
        return Compaction(None, 0, 0, 0, 0, len(singles))
    lines.sort()
    first, last = lines[0][0], lines[-1][0]
    texts = [text for _, _, text in lines]
    envelope = _segment_envelope(texts, first, last)
    key = f"{CHECKPOINT_PREFIX}/segment-{first:012d}-{last:012d}-{checkpoint_host()}-{secrets.token_hex(4)}.json"
    storage.write_unique(key, (json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8"))
    # verified as written before anything is removed: a store that altered or lost it keeps the singles
    written = storage.read_many([key]).get(key, b"").decode("utf-8", errors="replace")
    problem, kept_lines = _segment_lines(written, checking.trusted, (first, last))
    if problem or [line for line, _ in kept_lines] != texts:
        raise CompactionRefused(
            f"The segment {key} did not read back as written ({problem or 'other lines'}); nothing was removed."
        )
    # under object lock (WORM) the singles stay beside their copies in the segment
    not_removed = storage.remove_many([folded_key for _, folded_key, _ in lines])
    if not_removed:
        logger.warning("Could not remove %s compacted checkpoint objects, e.g. %s", len(not_removed), not_removed[0])
    return Compaction(
        key, first, last, len(lines), len(lines) - len(not_removed), len(singles) - len(folded), tuple(not_removed)
    )


def _segment_payload(digest: str, first: int, last: int, count: int, at: str) -> bytes:
    return json.dumps(
        {"domain": SEGMENT_DOMAIN, "digest": digest, "first": first, "last": last, "count": count, "at": at},
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")


def _lines_digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _segment_envelope(lines: list[str], first: int, last: int) -> dict[str, object]:
    assert _keys_provider is not None
    keys = _keys_provider()
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    digest = _lines_digest(lines)
    signature = _sign(keys.private_key, _segment_payload(digest, first, last, len(lines), at))
    return {
        "domain": SEGMENT_DOMAIN,
        "first": first,
        "last": last,
        "count": len(lines),
        "digest": digest,
        "at": at,
        "signer": keys.certificate.fingerprint(hashes.SHA256()).hex(),
        "signature": base64.b64encode(signature).decode("ascii"),
        "checkpoints": lines,
    }


def _segment_lines(
    text: str, trusted: dict[str, x509.Certificate], named: tuple[int, int]
) -> tuple[str, list[tuple[str, Any]]]:
    """("", its checkpoint lines, each with its JSON parsed) when a segment's signature verifies and
    its name, count and digest agree with its lines; else (the problem, [])."""
    try:
        data = json.loads(text)
        lines = [str(line) for line in data["checkpoints"]]
        first, last, count = int(data["first"]), int(data["last"]), int(data["count"])
        digest, at, signer = str(data["digest"]), str(data["at"]), str(data["signer"])
        signature = base64.b64decode(str(data["signature"]), validate=True)
        decoded = [json.loads(line) for line in lines]
        lengths = [int(item["length"]) for item in decoded]
    except (ValueError, KeyError, TypeError):
        return "not a checkpoint segment (the object was edited)", []
    certificate = trusted.get(signer)
    if certificate is None:
        return f"signed by an untrusted key {signer[:16]}…", []
    if not _verify(certificate, _segment_payload(digest, first, last, count, at), signature):
        return "the segment's signature does not match its content: the object was edited", []
    if (
        _lines_digest(lines) != digest
        or len(lines) != count
        or (min(lengths, default=-1), max(lengths, default=-1)) != (first, last)
    ):
        return "its checkpoints are not the ones the segment signed: a checkpoint was removed, added or edited", []
    if (first, last) != named:
        return (
            f"holds the signed segment of events {first}–{last}, not {named[0]}–{named[1]} as its name says: "
            "it was moved or renamed",
            [],
        )
    return "", list(zip(lines, decoded, strict=True))


def _object_keys(storage: VersionStorage) -> list[str]:
    # A local write in progress is a ``.part-`` file until its rename.
    return [key for key in storage.keys_under(CHECKPOINT_PREFIX) if ".part-" not in key]


def _object_entries(
    storage: VersionStorage, from_length: int, keys: list[str] | None = None
) -> list[tuple[str, int | tuple[int, int] | None, str]]:
    """(label, the event its name gives, text) for each checkpoint object of event ``from_length``
    or later, in the order of their keys; a segment's name gives its first and last event; a name
    that is neither kind's is given as event -1."""
    wanted: dict[str, int | tuple[int, int]] = {}
    for key in _object_keys(storage) if keys is None else keys:
        name = posixpath.basename(key)
        segment = _SEGMENT_NAME.match(name)
        if segment:
            if int(segment.group(2)) >= from_length:
                wanted[key] = (int(segment.group(1)), int(segment.group(2)))
            continue
        match = _OBJECT_NAME.match(name)
        named = int(match.group(1)) if match else -1
        if named >= from_length or not match:
            wanted[key] = named
    read = storage.read_many(list(wanted))
    entries: list[tuple[str, int | tuple[int, int] | None, str]] = []
    for key, given in sorted(wanted.items()):
        if key not in read:
            continue  # removed since it was listed (a compaction folded it into a segment listed too)
        text = read[key].decode("utf-8", errors="replace").strip()
        entries.append((f"{'checkpoint segment' if isinstance(given, tuple) else 'checkpoint'} {key}", given, text))
    return entries


def _parse(line: str, trusted: dict[str, x509.Certificate], kind: str = "file") -> tuple[str, Checkpoint | None]:
    try:
        data = json.loads(line)
    except ValueError:
        return f"not a checkpoint (the {kind} was edited)", None
    return _parsed(data, trusted, kind)


def _parsed(data: Any, trusted: dict[str, x509.Certificate], kind: str) -> tuple[str, Checkpoint | None]:
    """A checkpoint line's parsed JSON checked: its fields, its signer, its signature."""
    try:
        checkpoint = Checkpoint(
            length=int(data["length"]),
            hash=str(data["hash"]),
            at=str(data["at"]),
            signer=str(data["signer"]),
            signature=str(data["signature"]),
            timestamp=str(data.get("timestamp", "")),
        )
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (ValueError, KeyError, TypeError):
        return f"not a checkpoint (the {kind} was edited)", None
    certificate = trusted.get(checkpoint.signer)
    if certificate is None:
        return f"signed by an untrusted key {checkpoint.signer[:16]}…", None
    if not _verify(certificate, checkpoint.payload(), signature):
        return f"the signature does not match its content (event {checkpoint.length}): the {kind} was edited", None
    return "", checkpoint


def _timestamp_problem(checker: TimestampChecker, checkpoint: Checkpoint) -> str:
    problem = checker.problem(checkpoint.timestamp, checkpoint.payload(), datetime.fromisoformat(checkpoint.at))
    return f"{problem} (event {checkpoint.length})" if problem else ""


def _payload(length: int, hash: str, at: str) -> bytes:
    return json.dumps(
        {"domain": DOMAIN, "length": length, "hash": hash, "at": at}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


def _sign(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


def _verify(certificate: x509.Certificate, payload: bytes, signature: bytes) -> bool:
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _append_line(path: Path, line: str) -> None:
    # One write with O_APPEND: lines from concurrent processes never interleave.
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (line + "\n").encode("utf-8"))
    finally:
        os.close(descriptor)
