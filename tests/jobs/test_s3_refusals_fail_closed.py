"""A store that refuses this host is never read as "no such file": on a moto server that
authenticates every request against its IAM (tests/s3.py, ``s3_iam``), ``exists`` says False only
for an absent key and raises ``StorageAccessError`` on a refusal, ``remove`` refuses the same way,
clean-up after a failed unit of work logs the refusal without hiding the unit's own error, and the
population-overlap check refuses a registration whose older population it cannot read (nothing
written, nothing spent) instead of skipping it."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from governance.fingerprint import row_digests
from governance.models import AuditEvent, BudgetEntry, Dataset, DatasetVersion, SourceFingerprint
from governance.services import dataset_register, files_removed_on_error
from governance.services.datasets import _population_overlaps, fingerprint_key
from governance.storage import StorageAccessError, StoredFile, version_storage
from tests.jobs.test_s3_credentials import UNKNOWN_KEY, _leaks, _logged, _prefix

pytestmark = pytest.mark.django_db(transaction=True)


def _wrong_secret(s3_iam) -> tuple[str, str]:
    return (s3_iam.worker[0], "wrong-secret-never-shown-98765")


@pytest.mark.parametrize("refusing", ["an unknown access key", "a wrong secret"])
def test_exists_is_false_only_for_an_absent_key_and_a_refusal_raises_naming_its_cause(s3_iam, s3_iam_host, refusing):
    version_storage().write_new("datasets/kept/a.csv", b"a\n1\n")
    assert version_storage().exists("datasets/kept/a.csv")
    assert not version_storage().exists("datasets/kept/absent.csv")
    keys = UNKNOWN_KEY if refusing == "an unknown access key" else _wrong_secret(s3_iam)
    s3_iam_host(keys)
    storage = version_storage()

    for key in ("datasets/kept/a.csv", "datasets/kept/absent.csv"):
        with pytest.raises(StorageAccessError) as refused:
            storage.exists(key)
        assert "refused this host" in refused.value.message and key not in refused.value.message
        assert refused.value.extra["cause"] == "403"  # a HEAD request's refusal has no body
    with pytest.raises(StorageAccessError):
        storage.remove("datasets/kept/a.csv")  # once, nothing done and nothing said
    with pytest.raises(StorageAccessError):
        storage.write_new("datasets/kept/b.csv", b"b\n2\n")
    assert not _leaks([str(refused.value), json.dumps(refused.value.extra)], keys, s3_iam.worker)
    assert s3_iam.keys_under(_prefix()) == [f"{_prefix()}datasets/kept/a.csv"]


def test_clean_up_that_the_store_refuses_is_logged_and_the_failed_units_own_error_is_raised(
    s3_iam, s3_iam_host, caplog
):
    version_storage().write_new("datasets/kept/written.csv", b"a\n1\n")
    keys = _wrong_secret(s3_iam)
    s3_iam_host(keys)
    caplog.set_level(logging.WARNING)

    with pytest.raises(ZeroDivisionError), files_removed_on_error() as written:
        written.append(StoredFile(version_storage(), "datasets/kept/written.csv"))
        raise ZeroDivisionError  # the unit of work's own failure

    warned = [r for r in caplog.records if r.name == "governance.storage" and r.levelno == logging.WARNING]
    assert len(warned) == 1 and "could not be removed (403)" in warned[0].getMessage()
    assert s3_iam.keys_under(_prefix()) == [f"{_prefix()}datasets/kept/written.csv"]  # left, and said so
    assert not _leaks([_logged(caplog)], keys, s3_iam.worker)


def test_a_registration_whose_older_population_storage_will_not_read_is_refused_not_waved_through(
    cast, adult_csv, s3_iam, s3_iam_host, caplog
):
    """The older dataset's fingerprint is not in the database (made under an earlier key, say), so
    the overlap check must read its table; this host may write and read its own objects (its access
    check passes) but not that dataset's. The same people must not get a second budget."""
    fields = {"epsilon_cap": "10", "delta_cap": "1e-5", "filename": "adult.csv"}
    older = dataset_register(actor=cast.steward, name="walled", path=adult_csv, **fields).version
    SourceFingerprint.objects.filter(version=older).delete()
    before = (Dataset.objects.count(), DatasetVersion.objects.count(), BudgetEntry.objects.count())
    events, stored = AuditEvent.objects.count(), s3_iam.keys_under(_prefix())
    s3_iam_host(s3_iam.walled_off)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(StorageAccessError) as refused:
        dataset_register(actor=cast.steward, name="adult", path=adult_csv, **fields)

    message = refused.value.message
    assert "population-overlap check could not read the rows of dataset 'walled' version 1" in message
    assert "Nothing was written or spent" in message and older.storage_key not in message
    assert refused.value.extra == {"cause": "AccessDenied", "dataset": "walled", "version": 1}
    after = (Dataset.objects.count(), DatasetVersion.objects.count(), BudgetEntry.objects.count())
    assert after == before and AuditEvent.objects.count() == events
    assert not SourceFingerprint.objects.exists()
    assert [key for key in s3_iam.keys_under(_prefix()) if "/access-checks/" not in key] == stored
    assert not _leaks([message, _logged(caplog)], s3_iam.walled_off, s3_iam.worker)

    s3_iam_host(s3_iam.worker)  # a host that can read it finds the overlap and refuses for that
    with pytest.raises(Exception) as overlapping:
        dataset_register(actor=cast.steward, name="adult", path=adult_csv, **fields)
    assert getattr(overlapping.value, "code", None) == "population_overlap"
    assert not Dataset.objects.filter(name="adult").exists()


def test_the_overlap_check_under_refused_credentials_raises_instead_of_finding_no_older_population(
    cast, adult_csv, s3_iam, s3_iam_host
):
    """The store refuses even to say whether the older table is there (a HEAD request, 403): read
    as "absent", the check would compare with nothing and find no overlap."""
    fields = {"epsilon_cap": "10", "delta_cap": "1e-5", "filename": "adult.csv"}
    older = dataset_register(actor=cast.steward, name="walled", path=adult_csv, **fields).version
    SourceFingerprint.objects.filter(version=older).delete()
    digests = row_digests(pd.read_csv(adult_csv, dtype=str, keep_default_na=False), fingerprint_key())
    s3_iam_host(_wrong_secret(s3_iam))

    with pytest.raises(StorageAccessError, match="overlap check could not read the rows of dataset 'walled'"):
        _population_overlaps(name="adult", digests=digests, override_reason="")
    assert not SourceFingerprint.objects.exists()


def test_a_dashboard_page_whose_stored_profile_the_store_refuses_answers_503_naming_the_cause(
    cast, adult_csv, s3_iam, s3_iam_host, client
):
    fields = {"epsilon_cap": "10", "delta_cap": "1e-5", "filename": "adult.csv"}
    dataset_register(actor=cast.steward, name="adult", path=adult_csv, **fields)
    keys = _wrong_secret(s3_iam)
    s3_iam_host(keys)
    client.force_login(cast.steward)

    page = client.get("/datasets/adult/")

    assert page.status_code == 503
    text = page.content.decode()
    assert "refused this host: its credentials are not allowed to read objects" in text  # HEAD: 403, no body
    assert "Service unavailable" in text
    assert not _leaks([text], keys, s3_iam.worker)
