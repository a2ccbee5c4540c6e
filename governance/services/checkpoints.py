"""Signed checkpoints of the audit log's head, kept where the database cannot rewrite them.

After every append commits, the application signs (event id = chain length, event hash, time)
with the platform signing key and appends the line to ``SYNTHGATE_CHECKPOINT_PATH`` (by default
``DATA_DIR/audit-log/checkpoints.jsonl``). Someone who can write the database but does not hold
the key (a DBA, the owner role, a stolen application password) can recompute hashes, but cannot
produce checkpoints: ``audit_log_verify`` compares the chain with them and names the first event
that disagrees, a cut tail, or events that no checkpoint covers (docs/tamper-evidence.md).

The key lives with the audits app (``audits.keys``); it registers itself here at start-up,
so this module never imports audits.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from django.conf import settings

if TYPE_CHECKING:
    from governance.services.timestamps import TimestampChecker

logger = logging.getLogger(__name__)
DOMAIN = "synthgate-audit-checkpoint-v1"


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
    configured = getattr(settings, "SYNTHGATE_CHECKPOINT_PATH", None)
    return Path(configured) if configured else Path(settings.DATA_DIR) / "audit-log" / "checkpoints.jsonl"


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
    _append_line(checkpoint_path(), json.dumps(checkpoint.to_dict(), sort_keys=True, separators=(",", ":")))
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


def checkpoints_read() -> CheckpointRead:
    """Every checkpoint whose signature verifies, and a problem for each line that does not."""
    path = checkpoint_path()
    if not path.exists() or _keys_provider is None:
        return CheckpointRead([], [])
    trusted = {cert.fingerprint(hashes.SHA256()).hex(): cert for cert in _keys_provider().trusted}
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    timestamps: TimestampChecker | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        problem, checkpoint = _parse(line, trusted)
        if checkpoint is not None and checkpoint.timestamp:
            from governance.services.timestamps import TimestampChecker

            timestamps = timestamps or TimestampChecker.configured()
            problem = _timestamp_problem(timestamps, checkpoint)
        if problem or checkpoint is None:
            problems.append(f"checkpoint line {number}: {problem}")
        else:
            checkpoints.append(checkpoint)
    return CheckpointRead(checkpoints, problems)


def checkpoints_discard() -> None:
    """Forget every checkpoint (only for a database that is emptied on purpose, e.g. between tests)."""
    checkpoint_path().unlink(missing_ok=True)


def _parse(line: str, trusted: dict[str, x509.Certificate]) -> tuple[str, Checkpoint | None]:
    try:
        data = json.loads(line)
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
        return "not a checkpoint (the file was edited)", None
    certificate = trusted.get(checkpoint.signer)
    if certificate is None:
        return f"signed by an untrusted key {checkpoint.signer[:16]}…", None
    if not _verify(certificate, checkpoint.payload(), signature):
        return f"the signature does not match its content (event {checkpoint.length}): the file was edited", None
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
