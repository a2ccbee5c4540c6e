"""Fixtures for artefacts in an S3 bucket: moto's S3 server on this machine, and the storage URL and
standard AWS variables a worker host would be given (a plugin of tests/conftest.py)."""

from __future__ import annotations

import secrets

import boto3
import pytest

BUCKET = "synthgate-workers"


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_storage(s3_endpoint, monkeypatch, settings):
    """The storage URL and the standard AWS variables a worker host would be given."""
    import s3fs

    from governance.storage import _storage_for, version_storage

    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",  # moto refuses a location constraint for us-east-1
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    settings.SYNTHGATE_STORAGE_URL = f"s3://{BUCKET}/run-{secrets.token_hex(4)}"
    s3fs.S3FileSystem.clear_instance_cache()
    _storage_for.cache_clear()
    yield version_storage()
    _storage_for.cache_clear()
    s3fs.S3FileSystem.clear_instance_cache()
