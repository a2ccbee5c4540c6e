"""RFC 3161 timestamps of the audit log's checkpoints, when a time-stamping authority is configured.

A checkpoint signed with the platform key proves who signed it, not when: whoever holds the key
could sign a rewritten history later and date it in the past. With ``SYNTHGATE_TSA_URL`` set,
each checkpoint also carries a timestamp token from that TSA over the SHA-256 of its signed
content, so the TSA vouches that the chain had that length and head hash at its time.
``log verify`` checks every token against the TSA certificates in ``SYNTHGATE_TSA_CERTIFICATES``
(a PEM file: the TSA's certificate or the root it chains to) and that the TSA's time agrees with
the checkpoint's own (docs/tamper-evidence.md).

The tokens are requested over HTTP (RFC 3161 §3.4) and validated with pyHanko.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from django.conf import settings
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

logger = logging.getLogger(__name__)

# A checkpoint's own time and its TSA's time may differ by the request's round trip and clock
# skew; a token much later than the checkpoint means the line was made after the fact.
TIMESTAMP_BEFORE_TOLERANCE = timedelta(seconds=60)
TIMESTAMP_AFTER_TOLERANCE = timedelta(minutes=10)


class _HTTPTimeStamper(TimeStamper):
    """pyHanko's request building and response checks (status, nonce) over a plain urllib POST."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(include_nonce=True)
        self.url, self.timeout = url, timeout

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        request = urllib.request.Request(
            self.url, data=req.dump(), headers={"Content-Type": "application/timestamp-query"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
            if response.headers.get_content_type() != "application/timestamp-reply":
                raise OSError(f"the TSA answered {response.headers.get_content_type()}, not a timestamp reply")
            return tsp.TimeStampResp.load(response.read())


def tsa_url() -> str:
    return getattr(settings, "SYNTHGATE_TSA_URL", "") or ""


def timestamp_fetch(payload: bytes) -> str:
    """A base64 DER timestamp token over SHA-256(payload) from the configured TSA ("" when none is
    configured). Raises OSError or pyHanko's TimestampRequestError when the TSA cannot give one."""
    url = tsa_url()
    if not url:
        return ""
    stamper = _HTTPTimeStamper(url, timeout=float(getattr(settings, "SYNTHGATE_TSA_TIMEOUT", 10)))
    token = asyncio.run(stamper.async_timestamp(hashlib.sha256(payload).digest(), "sha256"))
    return base64.b64encode(token.dump()).decode("ascii")


def timestamp_time(token: str) -> datetime | None:
    """The time a token states, unverified (for display); None when it cannot be read."""
    try:
        return _tst_info(_load(token))["gen_time"].native
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class TimestampChecker:
    """Checks tokens against the configured TSA certificates (one validation context per verify)."""

    context: ValidationContext | None
    reason_unchecked: str

    @classmethod
    def configured(cls) -> TimestampChecker:
        path = getattr(settings, "SYNTHGATE_TSA_CERTIFICATES", "") or ""
        if not path:
            return cls(None, "no TSA certificate is configured (SYNTHGATE_TSA_CERTIFICATES)")
        roots = [asn1_x509.Certificate.load(der) for der in _pem_certificates(Path(path))]
        if not roots:
            return cls(None, f"no certificate in {path}")
        return cls(ValidationContext(trust_roots=roots, allow_fetching=False), "")

    def problem(self, token: str, payload: bytes, signed_at: datetime) -> str:
        """ "" when the token is a trusted TSA's timestamp of ``payload`` at about ``signed_at``."""
        try:
            signed_data = _load(token)["content"]
            stated = _tst_info(_load(token))["gen_time"].native
        except (ValueError, KeyError, TypeError):
            return "its RFC 3161 timestamp is not a timestamp token"
        if self.context is None:
            return f"its RFC 3161 timestamp cannot be checked: {self.reason_unchecked}"
        status = TimestampSignatureStatus(
            **asyncio.run(
                validate_tst_signed_data(
                    signed_data, self.context, lambda algorithm: hashlib.new(algorithm, payload).digest()
                )
            )
        )
        if not status.intact:
            return "its RFC 3161 timestamp is for other content: the line was re-signed after it was timestamped"
        if not status.valid:
            return "its RFC 3161 timestamp's signature is invalid"
        if not status.trusted:
            return "its RFC 3161 timestamp is not from a trusted TSA"
        if stated < signed_at - TIMESTAMP_BEFORE_TOLERANCE:
            return f"its RFC 3161 timestamp ({stated.isoformat()}) is earlier than the checkpoint"
        if stated > signed_at + TIMESTAMP_AFTER_TOLERANCE:
            return f"its RFC 3161 timestamp ({stated.isoformat()}) is long after the checkpoint: it was made later"
        return ""


def _load(token: str) -> cms.ContentInfo:
    return cms.ContentInfo.load(base64.b64decode(token, validate=True))


def _tst_info(content_info: cms.ContentInfo) -> tsp.TSTInfo:
    return content_info["content"]["encap_content_info"]["content"].parsed


def _pem_certificates(path: Path) -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return [cert.public_bytes(Encoding.DER) for cert in x509.load_pem_x509_certificates(path.read_bytes())]
