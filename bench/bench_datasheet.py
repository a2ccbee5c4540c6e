"""Benchmark datasheet issuance: draw charts, render the PDF, sign it, verify it.

Usage::

    .venv/bin/python bench/bench_datasheet.py                 # 30 checks, 4 charts, 5 repeats
    .venv/bin/python bench/bench_datasheet.py --checks 60 --repeats 3 --rsa --out /tmp/datasheet.pdf

The datasheet is the deterministic UCI-Adult-like sample (``tests.audits.datasheet_sample``): 15
columns, marginals for 9 of them, a 15 x 15 association heatmap, an ROC curve, DCR histograms
over 2 x 2,000 distances and ``--checks`` checks (plus one utility check). The first render pays
for importing WeasyPrint and loading fonts and is reported separately; the target is rendering
plus signing within 5 s. Runs without Django settings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rsa", action="store_true", help="sign with RSA 3072 instead of EC P-256")
    parser.add_argument("--out", type=Path, help="write the signed PDF here")
    arguments = parser.parse_args()

    started = time.perf_counter()
    from audits.datasheets import (
        SigningIdentity,
        ensure_platform_key,
        render_datasheet_html,
        render_datasheet_pdf,
        sign_pdf,
        verify_pdf,
    )
    from tests.audits.datasheet_sample import sample_datasheet_facts

    import_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as directory:
        key_path, cert_path = ensure_platform_key(directory, algorithm="rsa-3072" if arguments.rsa else "ec-p256")
        identity = SigningIdentity.load(key_path=key_path, cert_path=cert_path)

    timings: dict[str, list[float]] = {"charts": [], "html": [], "pdf": [], "sign": [], "verify": []}
    for repeat in range(arguments.repeats + 1):  # repeat 0 is the cold run
        t0 = time.perf_counter()
        facts = sample_datasheet_facts(n_checks=arguments.checks)
        t1 = time.perf_counter()
        html = render_datasheet_html(facts)
        t2 = time.perf_counter()
        pdf = render_datasheet_pdf(facts)
        t3 = time.perf_counter()
        signed = sign_pdf(
            pdf,
            identity,
            reason="Audited synthetic release",
            location="Synthgate",
            version_hash=facts["synthetic"]["hash"],
        )
        t4 = time.perf_counter()
        report = verify_pdf(signed.pdf_bytes, trusted_certs=[identity.certificate], expected_sha256=signed.sha256)
        t5 = time.perf_counter()
        assert report.ok, report.problems
        if repeat == 0:
            cold = t4 - t1
            continue
        for name, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t1, t4 - t3, t5 - t4), strict=True):
            timings[name].append(seconds)

    issue = [
        pdf_seconds + sign_seconds for pdf_seconds, sign_seconds in zip(timings["pdf"], timings["sign"], strict=True)
    ]
    print(
        f"datasheet: {len(facts['checks'])} checks, {len(facts['charts'])} charts, "
        f"key {'RSA 3072' if arguments.rsa else 'EC P-256'}, {arguments.repeats} warm runs"
    )
    print(f"import audits.datasheets          {import_seconds:6.2f} s")
    print(f"cold render + sign (first run)    {cold:6.2f} s")
    for name, label in (
        ("charts", "facts + 4 charts (SVG)"),
        ("html", "template -> HTML"),
        ("pdf", "template -> PDF (WeasyPrint)"),
        ("sign", "sign (pyHanko PAdES)"),
        ("verify", "verify"),
    ):
        print(f"{label:33s} {statistics.median(timings[name]):6.2f} s (median)")
    verdict = "within" if max(issue) <= TARGET_SECONDS else "OVER"
    print(
        f"render + sign                     {statistics.median(issue):6.2f} s median, {max(issue):.2f} s max "
        f"({verdict} the {TARGET_SECONDS:.0f} s target)"
    )
    print(
        f"HTML {len(html) / 1024:.0f} KiB, unsigned PDF {len(pdf) / 1024:.0f} KiB, "
        f"signed PDF {len(signed.pdf_bytes) / 1024:.0f} KiB"
    )
    if arguments.out:
        arguments.out.write_bytes(signed.pdf_bytes)
        print(f"wrote {arguments.out} (sha256 {signed.sha256})")


if __name__ == "__main__":
    main()
