"""The platform's keys: the signing identity, the trust list and the audit log's checkpoint keys, from
settings (the only reader of the signing settings). Not to be confused with ``audits/datasheets/signing.py``,
which signs and verifies PDFs with these keys; the datasheet package loads on first use, not here."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from audits import datasheets
from governance.services.checkpoints import CheckpointKeys

if TYPE_CHECKING:
    from audits.datasheets import SigningIdentity


def signing_directory() -> Path:
    return Path(settings.DATA_DIR) / "signing"


def platform_key_ensure() -> tuple[Path, Path] | None:
    """Generate the platform key and certificate unless an organisation's own is configured."""
    if settings.SYNTHGATE_SIGNING_PKCS12_PATH or settings.SYNTHGATE_SIGNING_KEY_PATH:
        signing_identity()  # fail now, at init, if the configured identity cannot be loaded
        return None
    return datasheets.ensure_platform_key(signing_directory(), organisation=settings.SYNTHGATE_ORGANISATION)


def signing_identity() -> SigningIdentity:
    if settings.SYNTHGATE_SIGNING_PKCS12_PATH:
        return datasheets.SigningIdentity.load(
            pkcs12_path=settings.SYNTHGATE_SIGNING_PKCS12_PATH, passphrase=settings.SYNTHGATE_SIGNING_PASSPHRASE
        )
    if settings.SYNTHGATE_SIGNING_KEY_PATH:
        return datasheets.SigningIdentity.load(
            key_path=settings.SYNTHGATE_SIGNING_KEY_PATH,
            cert_path=settings.SYNTHGATE_SIGNING_CERT_PATH,
            passphrase=settings.SYNTHGATE_SIGNING_PASSPHRASE,
        )
    key_path, cert_path = datasheets.ensure_platform_key(
        signing_directory(), organisation=settings.SYNTHGATE_ORGANISATION
    )
    return datasheets.SigningIdentity.load(key_path=key_path, cert_path=cert_path)


def trusted_certificates() -> list:
    identity = signing_identity()
    trusted = [identity.certificate, *identity.chain]
    if settings.SYNTHGATE_TRUSTED_CERTS_PATH:
        trusted += datasheets.load_certificates(settings.SYNTHGATE_TRUSTED_CERTS_PATH)
    return trusted


def checkpoint_keys() -> CheckpointKeys:
    """The platform key signs the audit log's checkpoints; the datasheet-trusted certificates verify them."""
    return _checkpoint_keys(
        str(settings.DATA_DIR),
        settings.SYNTHGATE_SIGNING_PKCS12_PATH,
        settings.SYNTHGATE_SIGNING_KEY_PATH,
        settings.SYNTHGATE_SIGNING_CERT_PATH,
        settings.SYNTHGATE_TRUSTED_CERTS_PATH,
    )


@lru_cache(maxsize=8)
def _checkpoint_keys(*configuration: str | None) -> CheckpointKeys:
    # Keyed by the signing settings, so a changed configuration (or data directory) loads afresh;
    # loading once per process matters because every append is signed.
    identity = signing_identity()
    return CheckpointKeys(
        private_key=identity.private_key, certificate=identity.certificate, trusted=tuple(trusted_certificates())
    )
