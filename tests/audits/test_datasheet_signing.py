"""Datasheet PDFs: rendering, platform keys, PAdES signing and strict offline verification.

Everything is real: WeasyPrint renders, pyHanko signs and validates, and tampering is done on
the bytes of the signed file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from audits.datasheets import (
    SigningIdentity,
    SigningIdentityError,
    datasheet_context,
    ensure_platform_key,
    html_to_pdf,
    render_datasheet_html,
    render_datasheet_pdf,
    self_signed_certificate,
    sign_pdf,
    verify_pdf,
)
from tests.audits.datasheet_sample import sample_datasheet_facts

ROOT = Path(__file__).resolve().parents[2]
SIGNED_AT = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> SigningIdentity:
    key_path, cert_path = ensure_platform_key(tmp_path_factory.mktemp("keys"), organisation="Acme Health")
    return SigningIdentity.load(key_path=key_path, cert_path=cert_path)


@pytest.fixture(scope="module")
def facts() -> dict:
    return sample_datasheet_facts()


@pytest.fixture(scope="module")
def datasheet_pdf(facts) -> bytes:
    """A full sample datasheet (30 checks, four charts), rendered once for the module."""
    return render_datasheet_pdf(facts)


@pytest.fixture(scope="module")
def signed(datasheet_pdf, platform, facts):
    return sign_pdf(
        datasheet_pdf,
        platform,
        reason="Audited synthetic release",
        location="Synthgate",
        version_hash=facts.synthetic.hash,
        signing_time=SIGNED_AT,
    )


def verify(pdf_bytes: bytes, platform: SigningIdentity, **kwargs):
    return verify_pdf(pdf_bytes, trusted_certs=[platform.certificate], **kwargs)


def flipped(data: bytes, position: int) -> bytes:
    tampered = bytearray(data)
    tampered[position] ^= 0x01
    return bytes(tampered)


def signature_gap(data: bytes) -> tuple[int, int]:
    """Start and end offsets of the unsigned /Contents gap, from the signature's /ByteRange."""
    start = data.rindex(b"/ByteRange")
    numbers = data[data.index(b"[", start) + 1 : data.index(b"]", start)].split()
    return int(numbers[1]), int(numbers[2])


def first_page_content_offset(data: bytes) -> int:
    """An offset inside the first page's content stream (page dictionaries sit in object streams)."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    contents = reader.root["/Pages"]["/Kids"][0].get_object().raw_get("/Contents")
    header = data.index(b"\n%d 0 obj" % contents.idnum)
    return data.index(b"stream", header + len(b"\n0 0 obj")) + len(b"stream\n") + 20


# --- keys -----------------------------------------------------------------------------------


def test_platform_key_is_a_self_signed_document_signing_certificate_valid_for_five_years(platform, tmp_path):
    certificate = platform.certificate
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value

    assert certificate.subject == certificate.issuer
    assert platform.subject == "O=Acme Health,CN=Synthgate platform signing key"
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity == dt.timedelta(days=5 * 365)
    assert isinstance(platform.private_key, ec.EllipticCurvePrivateKey)


def test_ensure_platform_key_creates_a_private_key_file_once_and_then_keeps_it(tmp_path):
    key_path, cert_path = ensure_platform_key(tmp_path)
    before = key_path.read_bytes(), cert_path.read_bytes()

    again = ensure_platform_key(tmp_path)

    assert again == (key_path, cert_path)
    assert (key_path.read_bytes(), cert_path.read_bytes()) == before
    assert key_path.stat().st_mode & 0o777 == 0o600


def test_ensure_platform_key_refuses_to_replace_a_certificate_whose_key_is_missing(tmp_path):
    key_path, _ = ensure_platform_key(tmp_path)
    key_path.unlink()

    with pytest.raises(SigningIdentityError, match="Only one of"):
        ensure_platform_key(tmp_path)


def test_ensure_platform_key_can_make_an_rsa_3072_key(tmp_path):
    key_path, cert_path = ensure_platform_key(tmp_path, algorithm="rsa-3072")

    identity = SigningIdentity.load(key_path=key_path, cert_path=cert_path)
    assert isinstance(identity.private_key, rsa.RSAPrivateKey) and identity.private_key.key_size == 3072


def test_an_identity_refuses_a_key_that_does_not_belong_to_the_certificate(platform):
    stranger = ec.generate_private_key(ec.SECP256R1())

    with pytest.raises(SigningIdentityError, match="does not belong"):
        SigningIdentity(private_key=stranger, certificate=platform.certificate)


def test_an_organisation_key_protected_by_a_passphrase_loads_from_pem(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_certificate(key, common_name="Acme datasheets", organisation="Acme")
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    identity = SigningIdentity.load(key_path=tmp_path / "key.pem", cert_path=tmp_path / "cert.pem", passphrase="s3cret")

    assert identity.subject == "O=Acme,CN=Acme datasheets"
    with pytest.raises(SigningIdentityError, match="Cannot read"):
        SigningIdentity.load(key_path=tmp_path / "key.pem", cert_path=tmp_path / "cert.pem", passphrase="wrong")


# --- signing and verification -----------------------------------------------------------------


def test_a_signed_datasheet_verifies_and_reports_what_it_describes(signed, platform, facts):
    report = verify(
        signed.pdf_bytes, platform, expected_sha256=signed.sha256, expected_version_hash=facts.synthetic.hash
    )

    assert report.ok, report.problems
    assert (report.intact, report.valid, report.trusted, report.covers_entire_file) == (True, True, True, True)
    assert report.sha256 == signed.sha256 and report.sha256_matches is True
    assert report.version_hash == facts.synthetic.hash
    assert report.signing_time == SIGNED_AT == signed.signed_at
    assert "Synthgate platform signing key" in report.signer
    assert report.problems == [] and any("Revocation was not checked" in note for note in report.notes)


def test_the_signature_is_a_pades_certification_that_forbids_later_changes(signed):
    assert b"/ETSI.CAdES.detached" in signed.pdf_bytes
    assert b"/DocMDP" in signed.pdf_bytes
    assert signed.pdf_bytes.startswith(b"%PDF-")


@pytest.mark.parametrize(
    "where", ["header", "header version", "page content stream", "signature DER", "signature padding", "last byte"]
)
def test_one_flipped_byte_anywhere_fails_verification(signed, platform, where):
    data = signed.pdf_bytes
    gap_start, gap_end = signature_gap(data)
    position = {
        "header": 2,
        "header version": 7,
        "page content stream": first_page_content_offset(data),
        "signature DER": gap_start + 40,
        "signature padding": gap_end - 4,
        "last byte": len(data) - 1,
    }[where]

    report = verify(flipped(data, position), platform)

    assert not report.ok
    assert report.problems
    assert not (report.intact and report.valid)


def test_a_changed_digit_in_the_signature_value_makes_the_signature_invalid(signed, platform):
    data = bytearray(signed.pdf_bytes)
    gap_start, gap_end = signature_gap(bytes(data))
    der_end = gap_start + 1 + len(bytes(data[gap_start + 1 : gap_end - 1]).rstrip(b"0"))
    position = next(k for k in range(der_end - 8, gap_start, -1) if chr(data[k]) in "123456789")
    data[position] = ord("0")

    report = verify(bytes(data), platform)

    assert report.intact and not report.valid and not report.ok
    assert any("not cryptographically valid" in problem for problem in report.problems)


def test_a_hex_digit_whose_case_changes_inside_the_signature_fails(signed, platform):
    data = bytearray(signed.pdf_bytes)
    gap_start, gap_end = signature_gap(bytes(data))
    position = next(k for k in range(gap_start + 1, gap_end) if chr(data[k]) in "ABCDEF")
    data[position] = ord(chr(data[position]).lower())

    report = verify(bytes(data), platform)

    assert not report.ok
    assert any("gap holding the signature" in problem for problem in report.problems)


def test_bytes_appended_after_signing_fail_even_though_pyhanko_calls_the_revision_intact(signed, platform):
    report = verify(signed.pdf_bytes + b"\n% appended comment\n", platform)

    assert report.intact and report.trusted
    assert not report.covers_entire_file
    assert not report.ok
    assert any("entire file" in problem for problem in report.problems)


def test_an_incremental_update_that_rewrites_the_version_hash_fails(signed, platform):
    writer = IncrementalPdfFileWriter(io.BytesIO(signed.pdf_bytes))
    info = writer.trailer["/Info"].get_object()
    info[generic.NameObject("/SynthgateVersionHash")] = generic.TextStringObject("0" * 64)
    writer.update_container(info)
    output = io.BytesIO()
    writer.write(output)

    report = verify(output.getvalue(), platform)

    assert not report.ok
    assert report.version_hash is None


def test_a_version_hash_edited_in_place_breaks_the_signature(signed, platform, facts):
    original = facts.synthetic.hash.encode()
    position = signed.pdf_bytes.rindex(original)
    tampered = signed.pdf_bytes[:position] + b"0" * len(original) + signed.pdf_bytes[position + len(original) :]

    report = verify(tampered, platform)

    assert not report.ok and not report.intact
    assert any("altered" in problem for problem in report.problems)


def test_a_datasheet_signed_by_an_unknown_key_is_untrusted(datasheet_pdf, platform, tmp_path):
    key_path, cert_path = ensure_platform_key(tmp_path, organisation="Acme Health")
    impostor = SigningIdentity.load(key_path=key_path, cert_path=cert_path)
    forged = sign_pdf(datasheet_pdf, impostor, reason="Audited synthetic release", location="Synthgate")

    report = verify(forged.pdf_bytes, platform)

    assert report.intact and report.valid
    assert not report.trusted and not report.ok
    assert any("not a trusted" in problem for problem in report.problems)
    assert verify_pdf(forged.pdf_bytes, trusted_certs=[impostor.certificate]).ok


def test_an_unsigned_pdf_fails(datasheet_pdf, platform):
    report = verify(datasheet_pdf, platform)

    assert not report.ok
    assert report.problems == ["The file carries no signature."]


def test_something_that_is_not_a_pdf_fails_with_a_reason(platform):
    report = verify(b"definitely not a pdf", platform)

    assert not report.ok
    assert "could not be read" in report.problems[0]


def test_a_file_whose_hash_differs_from_the_recorded_one_fails(signed, platform):
    report = verify(signed.pdf_bytes, platform, expected_sha256="0" * 64)

    assert report.sha256_matches is False and not report.ok
    assert report.intact and report.trusted


def test_a_datasheet_describing_another_version_fails_when_the_version_is_expected(signed, platform):
    report = verify(signed.pdf_bytes, platform, expected_version_hash="f" * 64)

    assert not report.ok
    assert any("describes version" in problem for problem in report.problems)


def test_a_pkcs12_identity_signs_datasheets_that_verify(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # an RSA signer; 2048 keeps it quick
    certificate = self_signed_certificate(key, common_name="Acme release signing", organisation="Acme")
    bundle = pkcs12.serialize_key_and_certificates(
        b"acme", key, certificate, None, serialization.BestAvailableEncryption(b"pass phrase")
    )
    (tmp_path / "acme.p12").write_bytes(bundle)

    identity = SigningIdentity.load(pkcs12_path=tmp_path / "acme.p12", passphrase="pass phrase")
    signed = sign_pdf(
        html_to_pdf("<h1>Release</h1>"), identity, reason="test", location="Lisbon", version_hash="ab" * 32
    )

    report = verify_pdf(signed.pdf_bytes, trusted_certs=[certificate], expected_sha256=signed.sha256)
    assert report.ok, report.problems
    assert report.version_hash == "ab" * 32
    with pytest.raises(SigningIdentityError, match="passphrase"):
        SigningIdentity.load(pkcs12_path=tmp_path / "acme.p12", passphrase="wrong")


def test_a_version_hash_embedded_at_rendering_is_covered_and_reported_after_signing(platform):
    pdf = html_to_pdf("<p>x</p>", version_hash="c" * 64)

    signed = sign_pdf(pdf, platform, reason="r", location="l")

    assert verify(signed.pdf_bytes, platform, expected_version_hash="c" * 64).ok


def test_signing_refuses_a_version_hash_that_contradicts_the_rendered_one(platform):
    pdf = html_to_pdf("<p>x</p>", version_hash="a" * 64)

    with pytest.raises(ValueError, match="already names version"):
        sign_pdf(pdf, platform, reason="r", location="l", version_hash="b" * 64)


def test_signing_refuses_a_naive_signing_time(platform):
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_pdf(html_to_pdf("<p>x</p>"), platform, reason="r", location="l", signing_time=dt.datetime(2026, 1, 1))


# --- rendering -------------------------------------------------------------------------------


def test_the_full_sample_datasheet_renders_to_a_multi_page_a4_pdf(datasheet_pdf, signed):
    assert datasheet_pdf.startswith(b"%PDF-")
    assert 20_000 < len(datasheet_pdf) < 1_000_000
    assert len(signed.pdf_bytes) > len(datasheet_pdf)


def test_the_datasheet_follows_the_datasheets_for_datasets_sections(facts):
    html = render_datasheet_html(facts)

    for heading in (
        "1. Motivation",
        "2. Composition",
        "3. Collection process",
        "4. Preprocessing, cleaning and labeling",
        "5. Privacy and evaluation",
        "6. Uses",
        "7. Distribution",
        "8. Maintenance",
    ):
        assert f"<h2>{heading}</h2>" in html
    assert html.count('<img class="chart" src="data:image/svg+xml;base64,') == 4
    assert html.count('<span class="verdict verdict-') == len(facts.checks) + 1
    assert "Intentionally non-representative" in html and "75.9\u202f%" in html and "50.0\u202f%" in html
    assert "Ola Nordmann" in html and "2026-02-26 09:30 UTC" in html
    assert "ε = 3" in html and "δ = 0.000001" in html  # one way to write an amount (core.amounts)


def test_a_non_private_release_is_called_non_private_in_red(platform):
    html = render_datasheet_html(sample_datasheet_facts(epsilon=None, rebalanced=False, with_charts=False))

    assert '<span class="nonprivate">Non-private (ε = ∞)' in html
    assert "This release is non-private (ε = ∞)." in html
    assert "Intentionally non-representative" not in html


def test_a_missed_positive_control_fails_the_audit_even_when_every_check_passes():
    facts = sample_datasheet_facts(with_charts=False)
    facts.checks = [dataclasses.replace(check, verdict="pass") for check in facts.checks]
    facts.positive_control.passed = False

    context = datasheet_context(facts)
    html = render_datasheet_html(facts)

    assert context["checks_summary"]["verdict"] == "fail"
    assert context["checks_summary"]["passed"] == context["checks_summary"]["total"]
    assert "Positive control: NOT detected" in html


def test_text_from_requesters_is_escaped_in_the_datasheet():
    facts = sample_datasheet_facts(with_charts=False)
    facts.request.purpose = '<script>alert("x")</script>'

    html = render_datasheet_html(facts)

    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_a_chart_string_cannot_add_markup_to_the_page():
    facts = sample_datasheet_facts(with_charts=False)
    facts.charts = {"roc": '"></figure><script>alert(1)</script><svg xmlns="http://www.w3.org/2000/svg"/>'}

    html = render_datasheet_html(facts)

    assert "<script>" not in html and "alert(1)" not in html
    assert html.count('<img class="chart" src="data:image/svg+xml;base64,') == 1


def test_rendering_fetches_nothing_from_the_network_or_disk():
    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        pdf = html_to_pdf(
            f'<link rel="stylesheet" href="{url}/style.css"><img src="{url}/logo.png">'
            f'<style>@import url("{url}/more.css");'
            f'@font-face {{ font-family: x; src: url("{url}/f.woff") }}</style>'
            f'<p style="font-family: x">hello</p><img src="file:///etc/passwd">'
        )
    finally:
        server.shutdown()
        server.server_close()

    assert pdf.startswith(b"%PDF-")
    assert requests == []


def test_the_projects_django_engine_renders_the_same_datasheet_as_the_standalone_engine(facts):
    from django.template.loader import render_to_string

    assert render_to_string("datasheets/datasheet.html", datasheet_context(facts)) == render_datasheet_html(facts)


def test_the_datasheet_renders_without_django_settings():
    script = (
        "from audits.datasheets import render_datasheet_html\n"
        "from tests.audits.datasheet_sample import sample_datasheet_facts\n"
        "html = render_datasheet_html(sample_datasheet_facts(with_charts=False))\n"
        "assert '<h2>8. Maintenance</h2>' in html\n"
        "print('ok')\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
