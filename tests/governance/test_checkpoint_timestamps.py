"""RFC 3161 timestamps of the audit log's checkpoints, against a real TSA served over HTTP on
localhost (pyHanko's own time-stamping authority, signing with a certificate made here).

With a TSA configured, every checkpoint carries the TSA's token over its signed content; `log
verify` checks each token and names a line whose token is for other content (re-signed with the
platform key after the fact), from an untrusted TSA, or dated far from the checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from audits.compliance.build import compliance_report_build
from core.times import time_text
from governance.services import audit_event_record, audit_log_verify
from governance.services.audit_log import audit_log_checkpoint
from governance.services.checkpoints import Checkpoint, checkpoint_path, checkpoint_sign
from governance.services.timestamps import timestamp_time
from tests.governance.test_cli import synthgate

pytestmark = pytest.mark.django_db


class LocalTSA:
    """An RFC 3161 time-stamping authority on 127.0.0.1 (HTTP POST, application/timestamp-query)."""

    def __init__(self, name: str, *, clock_offset: timedelta = timedelta(0)) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.stamper = DummyTimeStamper(
            tsa_cert=asn1_x509.Certificate.load(self.certificate.public_bytes(serialization.Encoding.DER)),
            tsa_key=asn1_keys.PrivateKeyInfo.load(
                key.private_bytes(
                    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            ),
        )
        self.clock_offset, self.requests = clock_offset, 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}/tsa"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
                tsa.stamper.fixed_dt = datetime.now(UTC) + tsa.clock_offset
                reply = asyncio.run(tsa.stamper.async_request_tsa_response(request)).dump()
                tsa.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def pem(self, tmp_path) -> str:
        path = tmp_path / f"tsa-{self.server.server_port}.pem"
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return str(path)

    def __enter__(self) -> LocalTSA:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tsa(settings, tmp_path):
    with LocalTSA("Synthgate test TSA") as tsa:
        settings.SYNTHGATE_TSA_URL = tsa.url
        settings.SYNTHGATE_TSA_CERTIFICATES = tsa.pem(tmp_path)
        yield tsa


def signed_head(events: int = 3) -> Checkpoint:
    for number in range(events):
        audit_event_record(actor=None, action="test.event", object_type="thing", object_id=str(number))
    return audit_log_checkpoint()


def lines() -> list[dict]:
    return [json.loads(line) for line in checkpoint_path().read_text().splitlines()]


def test_each_checkpoint_carries_the_tsas_timestamp_and_verify_checks_it(tsa, cast):
    checkpoint = signed_head()

    stated = timestamp_time(checkpoint.timestamp)
    assert tsa.requests == 1 and lines()[-1]["timestamp"] == checkpoint.timestamp
    assert abs(stated - datetime.fromisoformat(checkpoint.at)) < timedelta(seconds=30)
    result = audit_log_verify(grace_seconds=0)
    assert result.ok, result.problems
    assert result.checkpoint.timestamp == checkpoint.timestamp
    verified = synthgate("log", "verify").stdout
    assert f"at {time_text(checkpoint.at)}; RFC 3161 timestamp {time_text(stated)}" in verified
    carried = compliance_report_build(
        actor=cast.steward, date_from=date.today() - timedelta(days=1), date_to=date.today()
    )["audit_log"]["checkpoint"]
    assert (carried["timestamp"], carried["timestamped_at"]) == (checkpoint.timestamp, stated.isoformat())


def test_a_checkpoint_re_signed_with_the_platform_key_is_caught_by_its_timestamp(tsa, settings):
    """An insider with the signing key rewrites a checkpoint and keeps its (genuine) token."""
    checkpoint = signed_head()
    settings.SYNTHGATE_TSA_URL = ""  # the insider has the key, not the TSA
    checkpoint_path().unlink()
    forged = checkpoint_sign(length=checkpoint.length, hash="f" * 64, at=datetime.fromisoformat(checkpoint.at))
    checkpoint_path().write_text(json.dumps({**forged.to_dict(), "timestamp": checkpoint.timestamp}) + "\n")

    result = audit_log_verify(grace_seconds=0)

    assert not result.ok
    assert (
        f"checkpoint line 1: its RFC 3161 timestamp is for other content: the line was re-signed after it was "
        f"timestamped (event {checkpoint.length})"
    ) in result.problems


def test_a_token_from_an_untrusted_tsa_or_far_from_the_checkpoints_time_is_refused(tsa, settings, tmp_path):
    with LocalTSA("Someone else's TSA") as other:
        settings.SYNTHGATE_TSA_URL = other.url
        signed_head(events=1)
    with LocalTSA("Late TSA", clock_offset=timedelta(hours=2)) as late:
        settings.SYNTHGATE_TSA_URL = late.url
        settings.SYNTHGATE_TSA_CERTIFICATES = late.pem(tmp_path)
        signed_head(events=1)

    result = audit_log_verify(grace_seconds=0)

    assert not result.ok
    assert "checkpoint line 1: its RFC 3161 timestamp is not from a trusted TSA (event 1)" in result.problems
    assert any(
        problem.startswith("checkpoint line 2: its RFC 3161 timestamp (") and "is long after the checkpoint" in problem
        for problem in result.problems
    ), result.problems


def test_with_the_tsa_down_the_checkpoint_is_still_signed_without_a_timestamp(tsa, settings, caplog):
    tsa.server.shutdown()
    tsa.server.server_close()  # nothing listens on the port any more

    checkpoint = signed_head()

    assert checkpoint.timestamp == "" and lines()[-1]["timestamp"] == ""
    assert f"No RFC 3161 timestamp for the checkpoint of audit event {checkpoint.length}" in caplog.text
    assert audit_log_verify(grace_seconds=0).ok
