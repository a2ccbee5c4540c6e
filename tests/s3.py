"""Fixtures for artefacts in an S3 bucket: moto's S3 server on this machine, and the storage URL and
standard AWS variables a worker host would be given (a plugin of tests/conftest.py)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

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


# ------------------------------------------------- a bucket on a server that checks credentials

AUTH_BUCKET = "synthgate-iam"


@dataclass(frozen=True)
class IamBucket:
    """moto's S3 and IAM on this machine with authentication enforced: every request must be signed
    by an access key its IAM knows, and may do only what that key's user's policy allows."""

    endpoint: str
    worker: tuple[str, str]  # (access key id, secret): a user allowed s3:* on the bucket
    read_only: tuple[str, str]  # a user allowed s3:* but explicitly denied s3:PutObject
    walled_off: tuple[str, str]  # a user allowed s3:* but denied reading dataset "walled"'s versions

    def client(self, keys: tuple[str, str] | None = None) -> Any:
        key_id, secret = keys or self.worker
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )

    def keys_under(self, prefix: str) -> list[str]:
        """The bucket's object keys under ``prefix``, listed with the worker's own key."""
        listed = self.client().list_objects_v2(Bucket=AUTH_BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture(scope="module")
def s3_iam():
    """A moto server of its own whose requests are authenticated and authorised by its IAM
    (``INITIAL_NO_AUTH_ACTION_COUNT`` set to 0 through ``/moto-api/reset-auth``, once the bucket,
    the users and their keys exist), restored afterwards. moto keeps that setting per process, so it
    holds for any other moto server of this process meanwhile: a module with this fixture uses no
    other."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        anyone = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        anyone |= {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        boto3.client("s3", **anyone).create_bucket(Bucket=AUTH_BUCKET)
        iam = boto3.client("iam", **anyone)
        everything = {"Effect": "Allow", "Action": "s3:*", "Resource": _arns()}
        no_writes = {"Effect": "Deny", "Action": "s3:PutObject", "Resource": _arns()[1]}
        walled = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{_arns()[1][:-1]}*/datasets/walled/*"}
        keys = {}
        users = {"worker": [everything], "reader": [everything, no_writes], "walled": [everything, walled]}
        suffix = secrets.token_hex(4)  # moto's IAM is one per process: another module's users may exist
        for user, statements in users.items():
            name = f"{user}-{suffix}"
            iam.create_user(UserName=name)
            policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
            iam.put_user_policy(UserName=name, PolicyName="synthgate-bucket", PolicyDocument=policy)
            created = iam.create_access_key(UserName=name)["AccessKey"]
            keys[user] = (created["AccessKeyId"], created["SecretAccessKey"])
        answer = requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
        answer.raise_for_status()
        previous = answer.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
        try:
            yield IamBucket(
                endpoint=endpoint, worker=keys["worker"], read_only=keys["reader"], walled_off=keys["walled"]
            )
        finally:
            requests.post(f"{endpoint}/moto-api/reset-auth", data=previous.encode(), timeout=10)
    finally:
        server.stop()


def _arns() -> list[str]:
    return [f"arn:aws:s3:::{AUTH_BUCKET}", f"arn:aws:s3:::{AUTH_BUCKET}/*"]


@pytest.fixture
def s3_iam_host(s3_iam, monkeypatch, settings):
    """Artefacts at ``s3://synthgate-iam/run-<token>``; call it with an (access key id, secret)
    to give this host those credentials (as a worker host's environment would), the storage then
    built afresh. Starts with the worker's key."""
    import s3fs

    from governance.storage import _storage_for

    def as_host(keys: tuple[str, str]) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])
        s3fs.S3FileSystem.clear_instance_cache()
        _storage_for.cache_clear()

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_iam.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings.SYNTHGATE_STORAGE_URL = f"s3://{AUTH_BUCKET}/run-{secrets.token_hex(4)}"
    as_host(s3_iam.worker)
    yield as_host
    s3fs.S3FileSystem.clear_instance_cache()
    _storage_for.cache_clear()
