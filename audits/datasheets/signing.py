"""Signing identities, PAdES signing and strict verification of datasheet PDFs.

The platform signs every datasheet with one key (``ensure_platform_key`` creates it at
``synthgate init``), or with an organisation's own key and certificate, loaded from PEM files or
a PKCS#12 bundle (``SigningIdentity.load``). ``sign_pdf`` adds a PAdES baseline signature
(``ETSI.CAdES.detached``, SHA-256) that certifies the document (no later changes allowed) and
returns the SHA-256 of the final file so the caller can record it at signing time.
``verify_pdf`` accepts a file only if the signature is intact, cryptographically valid, made by
a trusted certificate and covers every byte of the file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import parser as asn1_parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko.sign.validation import EmbeddedPdfSignature, validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

PLATFORM_COMMON_NAME = "Synthgate platform signing key"
PLATFORM_KEY_FILENAME = "platform-signing-key.pem"
PLATFORM_CERT_FILENAME = "platform-signing-cert.pem"
PLATFORM_CERT_VALIDITY = dt.timedelta(days=5 * 365)
VERSION_HASH_KEY = "/SynthgateVersionHash"
RELEASE_ID_KEY = "/SynthgateReleaseId"
SIGNATURE_FIELD = "SynthgateDatasheetSignature"
REVOCATION_NOTE = (
    "Revocation was not checked: verification runs offline (no CRL or OCSP fetching), "
    "so a revoked signing certificate would still be accepted."
)

SIGNING_TIME_NOTE = (
    "The signing time is the signer's own clock; no trusted timestamp (RFC 3161) is applied, "
    "so it proves no more than the audit-log entry made at signing."
)


class SigningIdentityError(ValueError):
    """A key or certificate cannot be used to sign (unreadable, wrong passphrase, mismatched pair)."""


# ---------------------------------------------------------------------------------------------
# Keys and certificates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningIdentity:
    """A private key, its certificate, and any intermediate certificates that complete its chain."""

    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SigningIdentityError("Use an RSA or elliptic-curve signing key.")
        if _public_der(self.private_key.public_key()) != _public_der(self.certificate.public_key()):
            raise SigningIdentityError("The private key does not belong to the certificate; pass the matching pair.")

    @classmethod
    def load(
        cls,
        *,
        key_path: str | Path | None = None,
        cert_path: str | Path | None = None,
        pkcs12_path: str | Path | None = None,
        passphrase: str | bytes | None = None,
    ) -> SigningIdentity:
        """Load either a PEM key + PEM certificate (chain may follow the certificate) or a PKCS#12 file."""
        if pkcs12_path is not None:
            if key_path is not None or cert_path is not None:
                raise SigningIdentityError("Give either a PKCS#12 file or a key and certificate, not both.")
            return cls.from_pkcs12(Path(pkcs12_path).read_bytes(), passphrase=passphrase)
        if key_path is None or cert_path is None:
            raise SigningIdentityError("Give both key_path and cert_path (PEM), or pkcs12_path.")
        return cls.from_pem(Path(key_path).read_bytes(), Path(cert_path).read_bytes(), passphrase=passphrase)

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, *, passphrase: str | bytes | None = None) -> SigningIdentity:
        try:
            key = serialization.load_pem_private_key(key_pem, password=_as_bytes(passphrase))
            certificates = x509.load_pem_x509_certificates(cert_pem)
        except (ValueError, TypeError) as e:
            raise SigningIdentityError(f"Cannot read the PEM key or certificate: {e}") from e
        return cls(private_key=_signing_key(key), certificate=certificates[0], chain=tuple(certificates[1:]))

    @classmethod
    def from_pkcs12(cls, data: bytes, *, passphrase: str | bytes | None = None) -> SigningIdentity:
        try:
            key, certificate, extra = pkcs12.load_key_and_certificates(data, _as_bytes(passphrase))
        except (ValueError, TypeError) as e:
            raise SigningIdentityError(f"Cannot open the PKCS#12 file (check the passphrase): {e}") from e
        if key is None or certificate is None:
            raise SigningIdentityError("The PKCS#12 file must hold a private key and its certificate.")
        return cls(private_key=_signing_key(key), certificate=certificate, chain=tuple(extra))

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def fingerprint_sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()


def ensure_platform_key(
    directory: str | Path, *, organisation: str = "Synthgate", algorithm: str = "ec-p256"
) -> tuple[Path, Path]:
    """Create the platform signing key and its self-signed certificate unless both already exist.

    Returns ``(key_path, cert_path)``. The key is written unencrypted with mode 0600: protect the
    directory, or replace it with an organisation's own key. A lone key or certificate is refused
    rather than overwritten, since signed datasheets may already depend on it.
    """
    directory = Path(directory)
    key_path, cert_path = directory / PLATFORM_KEY_FILENAME, directory / PLATFORM_CERT_FILENAME
    if key_path.exists() and cert_path.exists():
        SigningIdentity.load(key_path=key_path, cert_path=cert_path)
        return key_path, cert_path
    if key_path.exists() or cert_path.exists():
        raise SigningIdentityError(
            f"Only one of {key_path.name} and {cert_path.name} exists in {directory}; "
            "restore the missing file or move both away to create a new platform key."
        )
    directory.mkdir(parents=True, exist_ok=True)
    key = _generate_key(algorithm)
    certificate = self_signed_certificate(key, common_name=PLATFORM_COMMON_NAME, organisation=organisation)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # O_EXCL: two concurrent `synthgate init` runs must not interleave two different keys.
    _write_new_file(key_path, key_pem, mode=0o600)
    _write_new_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return key_path, cert_path


def self_signed_certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    organisation: str,
    validity: dt.timedelta = PLATFORM_CERT_VALIDITY,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    """A self-signed end-entity certificate for document signing (digitalSignature + nonRepudiation)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a trust bundle) or a single DER certificate."""
    data = Path(path).read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _generate_key(algorithm: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise SigningIdentityError(f"Unknown key algorithm {algorithm!r}; use 'ec-p256' or 'rsa-3072'.")


def _write_new_file(path: Path, data: bytes, *, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _public_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def _as_bytes(passphrase: str | bytes | None) -> bytes | None:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


# ---------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedPdf:
    """The signed file, its SHA-256 (hex), the signer's subject and the signing time."""

    pdf_bytes: bytes
    sha256: str
    signer: str
    signed_at: dt.datetime


def _signing_key(key: object) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """The key, if it is of a kind a datasheet can be signed with (RSA or EC); a clear error otherwise."""
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningIdentityError(f"Datasheets are signed with an RSA or EC key; this key is {type(key).__name__}.")
    return key


class _PdfSignerAt(signers.PdfSigner):
    """A PdfSigner whose signing time (the signature dictionary's /M) can be fixed."""

    def __init__(self, *args: object, signing_time: dt.datetime, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # forwards PdfSigner's own arguments
        self._signing_time = signing_time

    def init_signing_session(
        self, pdf_out: BasePdfFileWriter, existing_fields_only: bool = False
    ) -> signers.pdf_signer.PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        session.system_time = self._signing_time
        return session


class _LoadedKeySigner(signers.SimpleSigner):
    """SimpleSigner that signs with the identity's loaded key object.

    pyHanko re-parses the DER key for every raw signature, and for RSA that re-runs
    cryptography's key validation (about 0.4 s for RSA 3072, twice per document).
    """

    def __init__(self, *, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # forwards SimpleSigner's own arguments
        self._private_key = private_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        digest = get_pyca_cryptography_hash(digest_algorithm)
        if mechanism == "rsassa_pkcs1v15" and isinstance(self._private_key, rsa.RSAPrivateKey):
            return self._private_key.sign(data, padding.PKCS1v15(), digest)
        if mechanism == "ecdsa" and isinstance(self._private_key, ec.EllipticCurvePrivateKey):
            return self._private_key.sign(data, ec.ECDSA(digest))
        return super().sign_raw(data, digest_algorithm)


def sign_pdf(
    pdf_bytes: bytes,
    identity: SigningIdentity,
    *,
    reason: str,
    location: str,
    version_hash: str | None = None,
    release_id: str | None = None,
    signing_time: dt.datetime | None = None,
) -> SignedPdf:
    """Certify ``pdf_bytes`` with a PAdES signature by ``identity``; no later change is permitted.

    ``version_hash`` (the SHA-256 of the dataset version the datasheet describes) is written to
    the document information dictionary as ``/SynthgateVersionHash`` in the same revision as the
    signature, so the signature covers it. A hash already embedded at rendering must agree.
    ``release_id`` (a release datasheet's release) is written as ``/SynthgateReleaseId`` the same way.
    """
    signing_time = signing_time or dt.datetime.now(dt.UTC).replace(microsecond=0)
    if signing_time.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware.")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes), strict=False)
    except Exception as e:  # pyHanko raises several unrelated types for unreadable input
        raise ValueError(f"Cannot sign: the input is not a readable PDF ({e}).") from e
    if version_hash is not None:
        _embed_version_hash(writer, version_hash)
    if release_id is not None:
        _embed_info(writer, RELEASE_ID_KEY, release_id)
    signer = _LoadedKeySigner(
        private_key=identity.private_key,
        signing_cert=_asn1_certificate(identity.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            identity.private_key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs(
            [_asn1_certificate(certificate) for certificate in identity.chain]
        ),
    )
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
    )
    output = _PdfSignerAt(metadata, signer, signing_time=signing_time).sign_pdf(writer)
    signed = output.getvalue()
    return SignedPdf(
        pdf_bytes=signed, sha256=hashlib.sha256(signed).hexdigest(), signer=identity.subject, signed_at=signing_time
    )


def _embed_info(writer: IncrementalPdfFileWriter, key: str, value: str) -> None:
    if "/Info" in writer.trailer:
        info = writer.trailer["/Info"].get_object()
    else:
        info = generic.DictionaryObject()
        writer.trailer["/Info"] = writer.add_object(info)
    info[generic.NameObject(key)] = generic.TextStringObject(value)
    writer.update_container(info)


def _embed_version_hash(writer: IncrementalPdfFileWriter, version_hash: str) -> None:
    if "/Info" in writer.trailer:
        info = writer.trailer["/Info"].get_object()
        existing = info.get(VERSION_HASH_KEY)
        if existing is not None and str(existing) != version_hash:
            raise ValueError(f"The PDF already names version {existing}, not {version_hash}; re-render it.")
    else:
        info = generic.DictionaryObject()
        writer.trailer["/Info"] = writer.add_object(info)
    info[generic.NameObject(VERSION_HASH_KEY)] = generic.TextStringObject(version_hash)
    writer.update_container(info)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationReport:
    """What ``verify_pdf`` found. ``ok`` is the verdict; ``problems`` say why it is False.

    ``notes`` carry limits of the check that do not fail it (revocation is not checked offline).
    ``sha256_matches`` is None when no expected hash was given.
    """

    ok: bool
    intact: bool
    valid: bool
    trusted: bool
    covers_entire_file: bool
    signer: str | None
    signing_time: dt.datetime | None
    sha256: str
    sha256_matches: bool | None
    version_hash: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    release_id: str | None = None


def verify_pdf(
    pdf_bytes: bytes,
    *,
    trusted_certs: Sequence[x509.Certificate],
    expected_sha256: str | None = None,
    expected_version_hash: str | None = None,
    expected_release_id: str | None = None,
) -> VerificationReport:
    """Check a signed datasheet offline against ``trusted_certs`` (the platform certificate is the anchor)."""
    sha256 = hashlib.sha256(pdf_bytes).hexdigest()
    facts: dict = {
        "intact": False,
        "valid": False,
        "trusted": False,
        "covers_entire_file": False,
        "signer": None,
        "signing_time": None,
        "version_hash": None,
        "release_id": None,
    }
    problems: list[str] = []
    sha256_matches = None
    if expected_sha256 is not None:
        sha256_matches = sha256 == expected_sha256.strip().lower()
        if not sha256_matches:
            problems.append(
                f"The file's SHA-256 {sha256} differs from the one recorded at signing ({expected_sha256})."
            )
    try:
        facts.update(_check_signature(pdf_bytes, trusted_certs, problems))
    except Exception as e:  # hostile input: any parser failure means the file cannot be verified
        problems.append(f"The file could not be read as a signed PDF: {type(e).__name__}: {e}")
    if expected_version_hash is not None and facts["version_hash"] != expected_version_hash:
        problems.append(
            f"The datasheet describes version {facts['version_hash']}, not the expected {expected_version_hash}."
        )
    if expected_release_id is not None and facts["release_id"] != expected_release_id:
        problems.append(
            f"The datasheet was issued for release {facts['release_id'] or '(none: an audit report)'}, "
            f"not release {expected_release_id}."
        )
    # Fail closed: every failure should have named a problem, but the verdict does not rely on it.
    ok = not problems and all(facts[key] for key in ("intact", "valid", "trusted", "covers_entire_file"))
    return VerificationReport(
        ok=ok,
        sha256=sha256,
        sha256_matches=sha256_matches,
        problems=problems,
        notes=[REVOCATION_NOTE, SIGNING_TIME_NOTE],
        **facts,
    )


def _check_signature(pdf_bytes: bytes, trusted_certs: Sequence[x509.Certificate], problems: list[str]) -> dict:
    reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
    signatures = reader.embedded_signatures
    if len(signatures) != 1:
        problems.append(
            "The file carries no signature."
            if not signatures
            else f"The file carries {len(signatures)} signatures; a datasheet has exactly one."
        )
        return {}
    embedded = signatures[0]
    context = ValidationContext(
        trust_roots=[_asn1_certificate(c) for c in trusted_certs], allow_fetching=False, revocation_mode="soft-fail"
    )
    try:
        status = validate_pdf_signature(embedded, context)
    except SignatureValidationError as e:
        problems.append(f"The signature could not be validated: {e}")
        return {}
    facts = {
        "intact": status.intact,
        "valid": status.intact and status.valid,
        "trusted": status.trusted,
        "covers_entire_file": status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        "signer": status.signing_cert.subject.human_friendly,
        "signing_time": status.signer_reported_dt,
    }
    if not status.intact:
        problems.append("The signed bytes were altered after signing (digest mismatch).")
    elif not status.valid:
        problems.append("The signature is not cryptographically valid for the signer's key.")
    if facts["valid"] and not status.trusted:
        problems.append(f"The signer ({facts['signer']}) is not a trusted signing certificate.")
    if not facts["covers_entire_file"]:
        problems.append(
            "The signature does not cover the entire file: bytes were added or changed after "
            "signing (for example an appended update)."
        )
    elif not _contents_are_canonical(pdf_bytes, embedded):
        facts["intact"] = facts["valid"] = False
        problems.append("The unsigned gap holding the signature was altered (its hex or padding changed).")
    if facts["intact"] and facts["covers_entire_file"]:
        facts["version_hash"] = _read_version_hash(reader)
        facts["release_id"] = _read_info(reader, RELEASE_ID_KEY)
    return facts


def _contents_are_canonical(pdf_bytes: bytes, embedded: EmbeddedPdfSignature) -> bool:
    """The gap the signature leaves uncovered must hold exactly the signature and zero padding.

    The byte range excludes /Contents, so flipping a padding byte, or the case of a hex digit,
    leaves pyHanko's digest check passing. Only ``<`` + upper-case hex of (DER + zeros) + ``>``,
    as pyHanko writes it, is accepted, so every byte of the file is pinned.
    """
    start, length_before, second_start, _ = (int(n) for n in embedded.byte_range)
    if start != 0:
        return False
    gap = pdf_bytes[length_before:second_start]
    contents: bytes = embedded.pkcs7_content
    if gap != b"<" + contents.hex().upper().encode("ascii") + b">":
        return False
    _, _, _, header, body, trailer = asn1_parser.parse(contents)
    der_length = len(header) + len(body) + len(trailer)
    return contents[der_length:].count(0) == len(contents) - der_length


def _read_version_hash(reader: PdfFileReader) -> str | None:
    return _read_info(reader, VERSION_HASH_KEY)


def _read_info(reader: PdfFileReader, key: str) -> str | None:
    info = reader.trailer_view.get("/Info")
    value = info.get_object().get(key) if info is not None else None
    return str(value) if value is not None else None
