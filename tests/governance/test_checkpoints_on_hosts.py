"""The audit log's signed checkpoints when workers run on several hosts: with SYNTHGATE_STORAGE_URL
set (an S3 bucket on moto's server, or a directory every host mounts) and no
SYNTHGATE_CHECKPOINT_PATH, each checkpoint is its own immutable object in the artefact storage,
named by its event and its host. Two "hosts" append at the same time: this test process and a
second Python process with its own host name, data directory and storage client. `log verify`
reads every checkpoint from the storage, and an altered, renamed or deleted checkpoint object
fails it as an edited, re-ordered or missing line of the checkpoint file does."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from django.db import connection

from audits import datasheets
from governance.models import AuditEvent
from governance.services import audit_event_record, audit_log_verify
from governance.services.checkpoints import CHECKPOINT_PREFIX, checkpoint_latest, checkpoint_storage
from governance.storage import _storage_for
from tests.governance.test_cli import synthgate
from tests.jobs.worker import REPO, database_url

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS_EACH = 12

HOST_B = textwrap.dedent(
    f"""
    import django

    django.setup()
    from governance.services import audit_event_record

    for number in range({EVENTS_EACH}):
        audit_event_record(actor=None, action="test.append", object_type="host", object_id=f"b-{{number}}")
    """
)


@pytest.fixture(params=["s3", "local"])
def shared_storage(request, settings, tmp_path):
    """The artefact storage both hosts are given: a bucket (moto), or a directory they both mount."""
    if request.param == "s3":
        storage = request.getfixturevalue("s3_storage")
    else:
        settings.SYNTHGATE_STORAGE_URL = str(tmp_path / "shared-mount")
        _storage_for.cache_clear()
        storage = _storage_for(settings.SYNTHGATE_STORAGE_URL)
    settings.SYNTHGATE_CHECKPOINT_PATH = ""
    key_path, cert_path = datasheets.ensure_platform_key(tmp_path / "secret", organisation="Synthgate")
    settings.SYNTHGATE_SIGNING_KEY_PATH, settings.SYNTHGATE_SIGNING_CERT_PATH = str(key_path), str(cert_path)
    yield storage
    storage.remove_under(CHECKPOINT_PREFIX)
    _storage_for.cache_clear()


def _host_b(settings, tmp_path: Path) -> subprocess.Popen:
    """A second host: its own process, host name, data directory and storage client."""
    env = {
        **os.environ,  # the AWS_* variables of the bucket, when it is one
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": database_url(),
        "SYNTHGATE_DATA_DIR": str(tmp_path / "host-b"),
        "SYNTHGATE_STORAGE_URL": settings.SYNTHGATE_STORAGE_URL,
        "SYNTHGATE_CHECKPOINT_PATH": "",
        "SYNTHGATE_HOST_NAME": "host-b",
        "SYNTHGATE_SIGNING_KEY_PATH": settings.SYNTHGATE_SIGNING_KEY_PATH,
        "SYNTHGATE_SIGNING_CERT_PATH": settings.SYNTHGATE_SIGNING_CERT_PATH,
    }
    return subprocess.Popen(
        [sys.executable, "-c", HOST_B], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _checkpoint_keys(storage) -> list[str]:
    return storage.keys_under(CHECKPOINT_PREFIX)


def test_two_hosts_write_checkpoints_as_objects_and_verify_reads_them_all(shared_storage, settings, tmp_path):
    storage = shared_storage
    settings.DATA_DIR = tmp_path / "host-a"
    settings.SYNTHGATE_HOST_NAME = "host-a"
    assert checkpoint_storage() is storage
    host_b = _host_b(settings, tmp_path)

    def host_a() -> None:
        try:
            for number in range(EVENTS_EACH):
                audit_event_record(actor=None, action="test.append", object_type="host", object_id=f"a-{number}")
        finally:
            connection.close()

    appending = threading.Thread(target=host_a)  # both hosts append at once
    appending.start()
    output, _ = host_b.communicate(timeout=180)
    appending.join(timeout=180)
    assert host_b.returncode == 0, output.decode()

    events = AuditEvent.objects.count()
    assert AuditEvent.objects.filter(object_type="host").count() == 2 * EVENTS_EACH
    keys = _checkpoint_keys(storage)
    assert len(keys) == events  # one object an append, none overwritten
    names = [key.rsplit("/", 1)[1] for key in keys]
    assert {name.split("-", 1)[1].rsplit("-", 1)[0] for name in names} == {"host-a", "host-b"}
    assert sorted(int(name[:12]) for name in names) == list(range(1, events + 1))
    for host in ("host-a", "host-b"):  # nothing of the log's anchor is on either host's disk
        assert not (tmp_path / host / "audit-log").exists()

    verified = audit_log_verify(grace_seconds=0)
    assert verified.ok, verified.problems
    assert verified.checkpoint is not None and verified.checkpoint.length == events
    assert checkpoint_latest() == verified.checkpoint
    run = synthgate("log", "verify", "--json")
    assert run.code == 0 and run.json()["ok"]

    # An altered checkpoint: its signature no longer matches (one of host B's).
    victim = next(key for key in keys if "-host-b-" in key)
    original = storage.read_bytes(victim)
    altered = json.loads(original)
    altered["hash"] = "0" * 64
    storage.remove(victim)
    storage.write_new(victim, json.dumps(altered).encode())
    result = audit_log_verify(grace_seconds=0)
    assert not result.ok
    assert any(victim in problem and "the object was edited" in problem for problem in result.problems)
    assert synthgate("log", "verify").code == 1
    storage.remove(victim)
    storage.write_new(victim, original)
    assert audit_log_verify(grace_seconds=0).ok

    # A re-ordered checkpoint: event 3's object renamed to claim a later event.
    third = next(key for key in keys if key.rsplit("/", 1)[1].startswith(f"{3:012d}-"))
    moved = third.replace(f"/{3:012d}-", f"/{events - 1:012d}-")
    storage.write_new(moved, storage.read_bytes(third))
    storage.remove(third)
    result = audit_log_verify(grace_seconds=0)
    assert not result.ok
    assert any(moved in problem and "moved or renamed" in problem for problem in result.problems)
    storage.write_new(third, storage.read_bytes(moved))
    storage.remove(moved)
    assert audit_log_verify(grace_seconds=0).ok

    # A deleted checkpoint: without the latest, the last event is covered by none.
    latest = max(keys)
    storage.remove(latest)
    result = audit_log_verify(grace_seconds=0)
    assert not result.ok
    assert f"events {events}–{events} are not covered by any signed checkpoint" in result.reason
    assert checkpoint_latest().length == events - 1


def test_a_checkpoint_file_is_still_used_when_it_is_configured(shared_storage, settings, tmp_path):
    """SYNTHGATE_CHECKPOINT_PATH set (one host, or a shared mount that can append) keeps the file."""
    settings.SYNTHGATE_CHECKPOINT_PATH = str(tmp_path / "anchor" / "checkpoints.jsonl")
    assert checkpoint_storage() is None
    for number in range(3):
        audit_event_record(actor=None, action="test.append", object_type="host", object_id=str(number))
    lines = Path(settings.SYNTHGATE_CHECKPOINT_PATH).read_text().splitlines()
    assert len(lines) == AuditEvent.objects.count()
    assert _checkpoint_keys(shared_storage) == []
    assert audit_log_verify(grace_seconds=0).ok
    Path(settings.SYNTHGATE_CHECKPOINT_PATH).write_text("\n".join(lines[:-1]) + "\n")  # the last line deleted
    result = audit_log_verify(grace_seconds=0)
    assert not result.ok and "not covered by any signed checkpoint" in result.reason


def _segment_keys(storage) -> list[str]:
    return [key for key in _checkpoint_keys(storage) if key.rsplit("/", 1)[1].startswith("segment-")]


def _rewritten(storage, key: str, data: bytes) -> None:
    storage.remove(key)
    storage.write_new(key, data)


def test_compacting_folds_old_checkpoints_into_one_signed_segment_that_verify_reads(shared_storage, settings, tmp_path):
    storage = shared_storage
    settings.DATA_DIR = tmp_path / "host-a"
    for number in range(EVENTS_EACH):
        audit_event_record(actor=None, action="test.append", object_type="host", object_id=str(number))
    assert len(_checkpoint_keys(storage)) == EVENTS_EACH

    run = synthgate("log", "compact", "--keep", "3", "--json")
    assert run.code == 0, run.message
    folded = run.json()
    assert (folded["first"], folded["last"], folded["checkpoints"], folded["removed"]) == (1, 9, 9, 9)
    assert folded["kept_single"] == 3 and folded["not_removed"] == []
    segment = folded["segment"]
    assert _segment_keys(storage) == [segment]
    event = AuditEvent.objects.get(action="audit_log.checkpoints_compacted")
    assert (
        event.object_id == "1-9"
        and event.after["segment"] == segment
        and event.after["first"] == 1
        and event.after["last"] == 9
    )
    singles = sorted(key for key in _checkpoint_keys(storage) if key != segment)
    assert [int(key.rsplit("/", 1)[1][:12]) for key in singles] == [10, 11, 12, event.id]  # the compaction's own event

    verified = audit_log_verify(grace_seconds=0)
    assert verified.ok, verified.problems
    assert verified.checkpoint is not None and verified.checkpoint.length == event.id
    assert checkpoint_latest() == verified.checkpoint
    envelope = json.loads(storage.read_bytes(segment))
    assert [json.loads(line)["length"] for line in envelope["checkpoints"]] == list(range(1, 10))

    # Every line of the segment is still one checkpoint that verifies on its own: one edited line,
    # the segment's digest left as signed, is named...
    original = storage.read_bytes(segment)
    edited = dict(envelope)
    line = json.loads(envelope["checkpoints"][4])
    line["hash"] = "0" * 64
    edited["checkpoints"] = [*envelope["checkpoints"][:4], json.dumps(line), *envelope["checkpoints"][5:]]
    _rewritten(storage, segment, json.dumps(edited).encode())
    result = audit_log_verify(grace_seconds=0)
    assert not result.ok
    assert any(
        segment in problem and "a checkpoint was removed, added or edited" in problem for problem in result.problems
    )
    # ... and so is a line taken out, with the digest recomputed to match (the signature no longer does).
    removed = dict(envelope, checkpoints=envelope["checkpoints"][1:], count=8)
    removed["digest"] = hashlib.sha256("\n".join(removed["checkpoints"]).encode()).hexdigest()
    _rewritten(storage, segment, json.dumps(removed).encode())
    result = audit_log_verify(grace_seconds=0)
    assert not result.ok
    assert any(segment in problem and "signature does not match" in problem for problem in result.problems)
    assert synthgate("log", "verify").code == 1
    # A segment renamed to claim later events.
    _rewritten(storage, segment, original)
    moved = segment.replace(f"segment-{1:012d}-{9:012d}-", f"segment-{1:012d}-{11:012d}-")
    storage.write_new(moved, original)
    storage.remove(segment)
    result = audit_log_verify(grace_seconds=0)
    assert not result.ok and any(moved in problem and "moved or renamed" in problem for problem in result.problems)
    storage.write_new(segment, original)
    storage.remove(moved)
    assert audit_log_verify(grace_seconds=0).ok


def test_compacting_refuses_to_fold_a_checkpoint_that_does_not_verify_and_writes_nothing(
    shared_storage, settings, tmp_path
):
    storage = shared_storage
    settings.DATA_DIR = tmp_path / "host-a"
    for number in range(5):
        audit_event_record(actor=None, action="test.append", object_type="host", object_id=str(number))
    keys = _checkpoint_keys(storage)
    victim = keys[1]
    altered = json.loads(storage.read_bytes(victim))
    altered["hash"] = "0" * 64
    _rewritten(storage, victim, json.dumps(altered).encode())
    events = AuditEvent.objects.count()

    run = synthgate("log", "compact", "--keep", "1")
    assert run.code != 0
    assert "do not verify, so nothing was compacted" in run.message and victim in run.message
    assert _checkpoint_keys(storage) == keys and AuditEvent.objects.count() == events
    assert synthgate("log", "compact", "--keep", "0").code != 0


def test_checkpoints_a_bucket_will_not_let_go_of_stay_beside_their_segment_and_still_verify(
    shared_storage, settings, tmp_path, monkeypatch
):
    """Under object lock (WORM) the singles cannot be removed: the segment holds them too, and the
    log verifies with both (as after a crash between the segment's write and the removals)."""
    from governance.services.checkpoints import checkpoints_compact

    storage = shared_storage
    settings.DATA_DIR = tmp_path / "host-a"
    for number in range(6):
        audit_event_record(actor=None, action="test.append", object_type="host", object_id=str(number))

    def locked(path, *args, **kwargs) -> None:
        raise PermissionError(f"{path} is under object lock")

    monkeypatch.setattr(storage.fs, "rm", locked)
    monkeypatch.setattr(storage.fs, "rm_file", locked)
    result = checkpoints_compact(keep=2)
    assert result.segment is not None and result.checkpoints == 4 and result.removed == 0
    assert len(result.not_removed) == 4
    monkeypatch.undo()
    assert len(_checkpoint_keys(storage)) == 6 + 1
    verified = audit_log_verify(grace_seconds=0)
    assert verified.ok, verified.problems
    assert verified.checkpoint.length == 6


def test_a_checkpoint_file_has_nothing_to_compact(settings, tmp_path):
    settings.SYNTHGATE_STORAGE_URL = ""
    settings.SYNTHGATE_CHECKPOINT_PATH = str(tmp_path / "checkpoints.jsonl")
    run = synthgate("log", "compact")
    assert run.code != 0 and "lines of one file" in run.message


def test_the_daily_beat_entry_compacts_the_objects_and_does_nothing_for_a_file(shared_storage, settings, tmp_path):
    from audits.services import checkpoint_compaction_schedule_ensure
    from audits.tasks import audit_log_checkpoints_compact

    entry = checkpoint_compaction_schedule_ensure()
    assert (entry.task, entry.enabled, entry.interval.every) == (
        "audits.tasks.audit_log_checkpoints_compact",
        True,
        86400,
    )
    assert checkpoint_compaction_schedule_ensure().pk == entry.pk  # idempotent, as `synthgate init` needs
    settings.DATA_DIR = tmp_path / "host-a"
    for number in range(104):
        audit_event_record(actor=None, action="test.append", object_type="host", object_id=str(number))
    done = audit_log_checkpoints_compact.apply().get()
    assert done["checkpoints"] == 4 and done["removed"] == 4 and len(_segment_keys(shared_storage)) == 1
    assert AuditEvent.objects.get(action="audit_log.checkpoints_compacted").channel == "worker"
    assert audit_log_verify(grace_seconds=0).ok
    settings.SYNTHGATE_CHECKPOINT_PATH = str(tmp_path / "checkpoints.jsonl")
    assert audit_log_checkpoints_compact.apply().get()["segment"] is None
