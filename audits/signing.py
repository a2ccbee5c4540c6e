"""The platform's signing identity, from settings (the only reader of the signing settings)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from audits.datasheets import SigningIdentity, ensure_platform_key, load_certificates


def signing_directory() -> Path:
    return Path(settings.DATA_DIR) / "signing"


def platform_key_ensure() -> tuple[Path, Path] | None:
    """Generate the platform key and certificate unless an organisation's own is configured."""
    if settings.SYNTHGATE_SIGNING_PKCS12_PATH or settings.SYNTHGATE_SIGNING_KEY_PATH:
        signing_identity()  # fail now, at init, if the configured identity cannot be loaded
        return None
    return ensure_platform_key(signing_directory(), organisation=settings.SYNTHGATE_ORGANISATION)


def signing_identity() -> SigningIdentity:
    if settings.SYNTHGATE_SIGNING_PKCS12_PATH:
        return SigningIdentity.load(
            pkcs12_path=settings.SYNTHGATE_SIGNING_PKCS12_PATH, passphrase=settings.SYNTHGATE_SIGNING_PASSPHRASE
        )
    if settings.SYNTHGATE_SIGNING_KEY_PATH:
        return SigningIdentity.load(
            key_path=settings.SYNTHGATE_SIGNING_KEY_PATH,
            cert_path=settings.SYNTHGATE_SIGNING_CERT_PATH,
            passphrase=settings.SYNTHGATE_SIGNING_PASSPHRASE,
        )
    key_path, cert_path = ensure_platform_key(signing_directory(), organisation=settings.SYNTHGATE_ORGANISATION)
    return SigningIdentity.load(key_path=key_path, cert_path=cert_path)


def trusted_certificates() -> list:
    identity = signing_identity()
    trusted = [identity.certificate, *identity.chain]
    if settings.SYNTHGATE_TRUSTED_CERTS_PATH:
        trusted += load_certificates(settings.SYNTHGATE_TRUSTED_CERTS_PATH)
    return trusted
