"""Production settings: no default secret, and Django's deployment checks pass.

Each case runs in a fresh interpreter, because settings are read once per process.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Everything the production settings read, so the developer's own environment cannot leak in.
SETTINGS_VARIABLES = (
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "DJANGO_DEBUG",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "CELERY_BROKER_URL",
    "SYNTHGATE_DATA_DIR",
)


def run(args: list[str], tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTINGS_VARIABLES and not any(name == f"{v}_FILE" for v in SETTINGS_VARIABLES)
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.production", SYNTHGATE_DATA_DIR=str(tmp_path), **variables
    )
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def production_environment() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "synthgate.example.org",
        "DATABASE_URL": "postgres://synthgate:secret@db.example.org:5432/synthgate",
    }


def test_production_settings_refuse_to_load_without_a_secret_key(tmp_path):
    result = run(["-c", "import django; django.setup()"], tmp_path, ALLOWED_HOSTS="synthgate.example.org")

    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is required and not set" in result.stderr


def test_production_settings_refuse_an_empty_secret_key(tmp_path):
    result = run(["-c", "import django; django.setup()"], tmp_path, SECRET_KEY="")
    assert "SECRET_KEY is required and not set" in result.stderr


def test_production_settings_read_the_secret_key_from_a_mounted_file(tmp_path):
    key = secrets.token_urlsafe(64)
    (tmp_path / "secret_key").write_text(key + "\n")
    result = run(
        ["-c", "from django.conf import settings; print(settings.SECRET_KEY, settings.DEBUG)"],
        tmp_path,
        SECRET_KEY_FILE=str(tmp_path / "secret_key"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [key, "False"]


def test_production_settings_refuse_an_unreadable_secret_key_file(tmp_path):
    result = run(["-c", "import django; django.setup()"], tmp_path, SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY_FILE" in result.stderr


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_production_settings_refuse_a_malformed_flag(tmp_path, value):
    result = run(
        ["-c", "import django; django.setup()"], tmp_path, **production_environment(), SECURE_SSL_REDIRECT=value
    )
    assert "ImproperlyConfigured" in result.stderr and "SECURE_SSL_REDIRECT" in result.stderr


def test_the_deployment_check_passes_under_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **production_environment())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deployment_check_fails_with_a_weak_secret_key(tmp_path):
    """The check above is meaningful: the same command rejects a short key."""
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        **{**production_environment(), "SECRET_KEY": "short"},
    )
    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout


def test_production_closes_the_api_schema_and_sends_security_headers(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SYNTHGATE_API_SCHEMA_PUBLIC, s.CONTENT_SECURITY_POLICY['DIRECTIVES']['script-src'], "
        "s.AXES_FAILURE_LIMIT)"
    )
    result = run(["-c", code], tmp_path, **production_environment())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False [\"'self'\"] 5"
